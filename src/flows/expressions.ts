import jsonata from 'jsonata';
import { LRUCache } from 'lru-cache';

/** The longest expression a flow may hold (characters). */
export const EXPRESSION_MAX_CHARS = 4096;
/**
 * How many steps one evaluation may take before it is stopped (about 0.3 s of one core): counted, not timed, so the
 * same expression passes or fails whatever else the host is doing (a busy worker, image work on its thread pool).
 */
export const EXPRESSION_MAX_STEPS = 500_000;
/** And how long it may take on the clock, however busy the host: an evaluation never holds a step longer. */
export const EXPRESSION_WALL_TIMEOUT_MS = 5000;
/** How deep one evaluation may nest (a runaway recursion stops here, not at the process's stack). */
export const EXPRESSION_MAX_DEPTH = 200;
/** The largest value an evaluation or a rendered template may produce (bytes of JSON). */
export const EXPRESSION_MAX_RESULT_BYTES = 1024 * 1024;

/** An expression that does not compile, runs too long, or makes too much: its message names the problem. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    /** The expression's JSONata error code (`S0203`…), or `timeout`, `too_deep`, `too_large`. */
    readonly code: string,
    readonly expression: string,
  ) {
    super(message);
  }
}

/**
 * The context a run's expressions see, and nothing else: no process, no globals, no functions of the host (JSONata
 * reaches only its input and its own built-ins).
 */
export interface FlowContext {
  trigger: unknown;
  steps: Record<string, { status: string; output?: unknown; task_id?: string; response?: unknown; error?: unknown }>;
  run: { id: string; flow_id: string; version: number; started_at?: string };
}

const compiled = new LRUCache<string, jsonata.Expression>({ max: 2000 });

/** Compiles `source` (cached), or throws an ExpressionError naming the problem. */
export function compileExpression(source: string): jsonata.Expression {
  if (source.length > EXPRESSION_MAX_CHARS) {
    throw new ExpressionError(
      `expression is longer than ${EXPRESSION_MAX_CHARS} characters`,
      'too_large',
      source.slice(0, 80),
    );
  }
  const hit = compiled.get(source);
  if (hit) return hit;
  try {
    const expression = jsonata(source);
    compiled.set(source, expression);
    return expression;
  } catch (err) {
    const e = err as { code?: string; message?: string; position?: number };
    const at = e.position === undefined ? '' : ` at ${e.position}`;
    throw new ExpressionError(`invalid expression${at}: ${e.message ?? String(err)}`, e.code ?? 'invalid', source);
  }
}

/**
 * Evaluates `source` over `context`, within EXPRESSION_MAX_STEPS (and EXPRESSION_WALL_TIMEOUT_MS) and EXPRESSION_MAX_DEPTH, its result at most
 * EXPRESSION_MAX_RESULT_BYTES of JSON. An expression that matches nothing gives `undefined`.
 */
export async function evaluateExpression(source: string, context: unknown): Promise<unknown> {
  compileExpression(source); // checks it (cached); the one evaluated is its own, for its own guards below
  const expression = jsonata(source);
  const started = Date.now();
  let depth = 0;
  let steps = 0;
  const guard = () => {
    if (depth > EXPRESSION_MAX_DEPTH) {
      throw new ExpressionError(`expression nests deeper than ${EXPRESSION_MAX_DEPTH}`, 'too_deep', source);
    }
    if (steps > EXPRESSION_MAX_STEPS) {
      throw new ExpressionError(`expression took more than ${EXPRESSION_MAX_STEPS} steps`, 'timeout', source);
    }
    // The clock only every 1,000 steps: a call to it costs more than a step.
    if (steps % 1000 === 0 && Date.now() - started > EXPRESSION_WALL_TIMEOUT_MS) {
      throw new ExpressionError(`expression ran longer than ${EXPRESSION_WALL_TIMEOUT_MS} ms`, 'timeout', source);
    }
  };
  // JSONata calls these around every step of an evaluation (the hooks its own exerciser uses to bound time). They
  // live in the expression's environment, hence an expression of its own per evaluation (parsing is cheap).
  expression.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, () => {
    depth++;
    steps++;
    guard();
  });
  expression.assign(Symbol.for('jsonata.__evaluate_exit') as unknown as string, () => {
    depth--;
    guard();
  });
  let value: unknown;
  try {
    value = await expression.evaluate(context);
  } catch (err) {
    if (err instanceof ExpressionError) throw err;
    const e = err as { code?: string; message?: string };
    throw new ExpressionError(`expression failed: ${e.message ?? String(err)}`, e.code ?? 'failed', source);
  }
  return bounded(plain(value), source);
}

const WHOLE = /^\s*\{\{([\s\S]+?)\}\}\s*$/;
const PART = /\{\{([\s\S]+?)\}\}/g;

/**
 * Renders a template: in every string of `template` (deeply, keys untouched), a string that is exactly
 * `{{ expr }}` takes the expression's value, whatever its JSON type; other `{{ expr }}` are replaced by the value as
 * text (strings as they are, anything else as JSON, nothing for undefined).
 */
export async function renderTemplate(template: unknown, context: unknown): Promise<unknown> {
  const rendered = await render(template, context);
  return bounded(rendered, typeof template === 'string' ? template : '(template)');
}

async function render(template: unknown, context: unknown): Promise<unknown> {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole && !whole[1].includes('}}')) return evaluateExpression(whole[1].trim(), context);
    const parts: string[] = [];
    let last = 0;
    for (const match of template.matchAll(PART)) {
      parts.push(template.slice(last, match.index));
      const value = await evaluateExpression(match[1].trim(), context);
      parts.push(value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value));
      last = match.index + match[0].length;
    }
    if (last === 0) return template;
    parts.push(template.slice(last));
    return parts.join('');
  }
  if (Array.isArray(template)) {
    const out: unknown[] = [];
    for (const item of template) out.push(await render(item, context));
    return out;
  }
  if (template && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) out[key] = await render(value, context);
    return out;
  }
  return template;
}

/** Every problem of the expressions in `template` (deeply), each as "<path>: <message>", without evaluating any. */
export function templateProblems(template: unknown, path = ''): string[] {
  if (typeof template === 'string') {
    const problems: string[] = [];
    for (const match of template.matchAll(PART)) {
      try {
        compileExpression(match[1].trim());
      } catch (err) {
        problems.push(`${path || '(value)'}: ${(err as Error).message}`);
      }
    }
    return problems;
  }
  if (Array.isArray(template)) return template.flatMap((item, i) => templateProblems(item, `${path}[${i}]`));
  if (template && typeof template === 'object') {
    return Object.entries(template).flatMap(([key, value]) => templateProblems(value, path ? `${path}.${key}` : key));
  }
  return [];
}

/** The problem of one expression (as a condition's `if` holds it), or null when it compiles. */
export function expressionProblem(source: string): string | null {
  try {
    compileExpression(source);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** JSONata marks its sequences with extra properties; the value the context's JSON would hold, without them. */
function plain(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  if (typeof (value as { then?: unknown }).then === 'function') return undefined;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

function bounded(value: unknown, source: string): unknown {
  if (value === undefined) return value;
  const size = Buffer.byteLength(JSON.stringify(value) ?? '');
  if (size > EXPRESSION_MAX_RESULT_BYTES) {
    throw new ExpressionError(
      `expression made ${size} bytes, more than ${EXPRESSION_MAX_RESULT_BYTES}`,
      'too_large',
      source.slice(0, 80),
    );
  }
  return value;
}
