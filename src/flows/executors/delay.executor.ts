import { Injectable } from '@nestjs/common';
import { renderTemplate, templateProblems } from '../expressions';
import { DelayStep, FlowStepExecutor, StepExecution, StepRun } from '../flow-step.types';

/** The longest delay: 30 days. */
export const MAX_DELAY_SECONDS = 30 * 24 * 3600;

/** Waits `seconds`, or until the time `until` renders to, holding no worker (a delayed job). */
@Injectable()
export class DelayExecutor extends FlowStepExecutor<DelayStep> {
  readonly kind = 'delay' as const;

  problems(step: DelayStep): string[] {
    if ((step.seconds === undefined) === (step.until === undefined)) {
      return ['seconds: a delay needs either seconds or until'];
    }
    if (step.seconds !== undefined) {
      if (typeof step.seconds !== 'number' || !Number.isFinite(step.seconds) || step.seconds < 0) {
        return ['seconds: must be a number of seconds ≥ 0'];
      }
      if (step.seconds > MAX_DELAY_SECONDS) return [`seconds: at most ${MAX_DELAY_SECONDS} (30 days)`];
      return [];
    }
    if (typeof step.until !== 'string' || step.until.trim() === '') return ['until: must be an ISO time or a template'];
    if (!step.until.includes('{{') && Number.isNaN(Date.parse(step.until))) return ['until: must be an ISO time'];
    return templateProblems(step.until, 'until');
  }

  async execute(run: StepRun<DelayStep>): Promise<StepExecution> {
    const wakeAt = typeof run.state?.wake_at === 'number' ? run.state.wake_at : await this.wakeTime(run);
    if (typeof wakeAt === 'object') return wakeAt;
    if (Date.now() >= wakeAt) return { kind: 'done', output: { waited_until: new Date(wakeAt).toISOString() } };
    return { kind: 'wait', untilMs: wakeAt, state: { wake_at: wakeAt } };
  }

  private async wakeTime(run: StepRun<DelayStep>): Promise<number | StepExecution> {
    const { step } = run;
    if (step.seconds !== undefined) return Date.now() + Math.round(step.seconds * 1000);
    let rendered: unknown;
    try {
      rendered = await renderTemplate(step.until, run.context);
    } catch (err) {
      return { kind: 'failed', code: 'expression_failed', message: (err as Error).message, retryable: false };
    }
    const at = typeof rendered === 'string' || typeof rendered === 'number' ? new Date(rendered).getTime() : NaN;
    if (Number.isNaN(at)) {
      return {
        kind: 'failed',
        code: 'until_invalid',
        message: `until: ${JSON.stringify(rendered)} is not a time`,
        retryable: false,
      };
    }
    if (at - Date.now() > MAX_DELAY_SECONDS * 1000) {
      return { kind: 'failed', code: 'until_invalid', message: 'until: more than 30 days ahead', retryable: false };
    }
    return at;
  }
}
