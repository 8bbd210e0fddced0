import { Injectable } from '@nestjs/common';
import { evaluateExpression, ExpressionError, expressionProblem } from '../expressions';

import { ConditionStep, FlowStepExecutor, StepExecution, StepRun } from '../flow-step.types';

/**
 * `if` → `then` or `else`; or `switch` → the case named by its value, `default` otherwise. A branch left out goes on
 * to the step's `next` (or the following step).
 */
@Injectable()
export class ConditionExecutor extends FlowStepExecutor<ConditionStep> {
  readonly kind = 'condition' as const;

  problems(step: ConditionStep): string[] {
    const problems: string[] = [];
    const hasIf = step.if !== undefined;
    const hasSwitch = step.switch !== undefined;
    if (hasIf === hasSwitch) return ['if: a condition needs either if (with then/else) or switch (with cases)'];
    const source = hasIf ? step.if : step.switch;
    const field = hasIf ? 'if' : 'switch';
    if (typeof source !== 'string' || source.trim() === '') problems.push(`${field}: must be an expression`);
    else {
      const problem = expressionProblem(source);
      if (problem) problems.push(`${field}: ${problem}`);
    }
    for (const branch of ['then', 'else', 'default'] as const) {
      if (step[branch] !== undefined && typeof step[branch] !== 'string') problems.push(`${branch}: must be a step id`);
    }
    if (hasSwitch) {
      if (step.cases === undefined || typeof step.cases !== 'object' || Array.isArray(step.cases)) {
        problems.push('cases: must be an object of value → step id');
      }
    } else if (step.cases !== undefined) {
      problems.push('cases: only with switch');
    }
    return problems;
  }

  async execute(run: StepRun<ConditionStep>): Promise<StepExecution> {
    const { step } = run;
    try {
      if (step.switch !== undefined) {
        const value = await evaluateExpression(step.switch, run.context);
        const key = typeof value === 'string' ? value : JSON.stringify(value);
        const chosen = key !== undefined && step.cases?.[key] !== undefined ? step.cases[key] : step.default;
        return { kind: 'done', output: { value: value ?? null, next: chosen ?? null }, next: chosen };
      }
      const value = await evaluateExpression(step.if!, run.context);
      const truthy = isTruthy(value);
      const chosen = truthy ? step.then : step.else;
      return { kind: 'done', output: { value: truthy, next: chosen ?? null }, next: chosen };
    } catch (err) {
      const code = err instanceof ExpressionError ? `expression_${err.code}` : 'expression_failed';
      return { kind: 'failed', code, message: (err as Error).message, retryable: false };
    }
  }
}

/** JSONata's own truthiness: empty strings, arrays and objects, zero, null and nothing are false. */
function isTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.some(isTruthy);
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
