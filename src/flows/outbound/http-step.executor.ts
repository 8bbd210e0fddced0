import { Injectable, Logger } from '@nestjs/common';
import { errors, request } from 'undici';
import { redactUrl } from '../../logging/logger.options';
import { UrlGuard, UrlGuardError } from '../../security/url-guard';
import { renderTemplate, templateProblems } from '../expressions';
import { FlowStepExecutor, HttpStep, STEP_DEFAULTS, StepExecution, StepRun } from '../flow-step.types';

/** The most of an answer an http step keeps; one byte more is read to tell that it is larger. */
export const HTTP_STEP_MAX_RESPONSE_BYTES = 1024 * 1024;

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** The answer's headers an http step keeps (anything else, cookies included, is dropped). */
const KEPT_RESPONSE_HEADERS = [
  'content-type',
  'content-length',
  'content-language',
  'cache-control',
  'etag',
  'last-modified',
  'location',
  'retry-after',
  'x-request-id',
];

/** What an http step keeps of the answer, as `steps.<id>.response`. */
export interface HttpStepResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

class ResponseTooLarge extends Error {}

/**
 * `http` steps: one request made on the run owner's behalf, through the URL guard of webhooks (http(s) only, no
 * private or loopback address unless WEBHOOK_ALLOW_PRIVATE, the address checked where it is connected to), no
 * redirect followed, bounded in time (`timeout_ms` and the run's signal) and in size (1 MiB of answer). Its headers
 * are never logged (they may carry credentials), and only a safe list of the answer's headers is kept.
 */
@Injectable()
export class HttpStepExecutor extends FlowStepExecutor<HttpStep> {
  readonly kind = 'http' as const;
  private readonly logger = new Logger('FlowHttpStep');

  constructor(private readonly guard: UrlGuard) {
    super();
  }

  problems(step: HttpStep): string[] {
    const problems: string[] = [];
    if (typeof step.url !== 'string' || !step.url.trim()) {
      problems.push('url: is required (a URL, or a template that renders one)');
    } else if (!step.url.includes('{{')) {
      const problem = this.guard.problem(step.url);
      if (problem) problems.push(`url: ${problem}`);
    } else {
      problems.push(...templateProblems(step.url, 'url'));
    }
    if (step.method !== undefined && !(HTTP_METHODS as readonly unknown[]).includes(step.method)) {
      problems.push(`method: must be one of ${HTTP_METHODS.join(', ')}`);
    }
    if (step.method === 'GET' && step.body !== undefined) problems.push('body: a GET request has no body');
    if (step.headers !== undefined) {
      if (!step.headers || typeof step.headers !== 'object' || Array.isArray(step.headers)) {
        problems.push('headers: must be an object of header names to strings');
      } else {
        for (const [name, value] of Object.entries(step.headers)) {
          if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) problems.push(`headers.${name}: is not a valid header name`);
          if (typeof value !== 'string') problems.push(`headers.${name}: must be a string`);
        }
        problems.push(...templateProblems(step.headers, 'headers'));
      }
    }
    if (step.body !== undefined) problems.push(...templateProblems(step.body, 'body'));
    return problems;
  }

  async execute(run: StepRun<HttpStep>): Promise<StepExecution> {
    const { step } = run;
    let url: string;
    let headers: Record<string, string>;
    let body: string | undefined;
    try {
      const rendered = await renderTemplate(step.url, run.context);
      if (typeof rendered !== 'string') {
        return failed('invalid_url', `url rendered to ${JSON.stringify(rendered) ?? 'nothing'}, not a URL`, false);
      }
      url = rendered;
      headers = stringHeaders(await renderTemplate(step.headers ?? {}, run.context));
      if (step.body !== undefined) {
        const value = await renderTemplate(step.body, run.context);
        if (typeof value === 'string') {
          body = value;
          if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'text/plain; charset=utf-8';
        } else if (value !== undefined) {
          body = JSON.stringify(value);
          if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json';
        }
      }
    } catch (err) {
      return failed('expression_failed', (err as Error).message, false);
    }
    const problem = this.guard.problem(url);
    if (problem) return failed('url_not_allowed', `url ${problem}`, false);

    const method = step.method ?? (body === undefined ? 'GET' : 'POST');
    const timeoutMs = step.timeout_ms ?? STEP_DEFAULTS.http.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const started = performance.now();
    const log = { runId: run.runId, stepId: step.id, method, url: redactUrl(url) };
    try {
      const res = await request(url, {
        method,
        headers: { 'user-agent': 'media-tasks-flows/1', ...headers },
        body,
        dispatcher: this.guard.dispatcher(),
        signal: AbortSignal.any([run.signal, timeout]),
      });
      const declared = Number(res.headers['content-length']);
      if (declared > HTTP_STEP_MAX_RESPONSE_BYTES) {
        res.body.destroy();
        throw new ResponseTooLarge();
      }
      const raw = await readCapped(res.body);
      const response: HttpStepResponse = {
        status: res.statusCode,
        headers: keptHeaders(res.headers),
        body: parseBody(raw, res.headers['content-type']),
      };
      const durationMs = Math.round(performance.now() - started);
      this.logger.debug({ ...log, status: res.statusCode, durationMs }, 'flow http step answered');
      return outcome(response);
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      const result = this.classify(err, timeout.aborted, run.signal.aborted, timeoutMs);
      this.logger.debug({ ...log, durationMs, code: result.code }, `flow http step failed: ${result.message}`);
      return result;
    }
  }

  private classify(
    err: unknown,
    timedOut: boolean,
    aborted: boolean,
    timeoutMs: number,
  ): Extract<StepExecution, { kind: 'failed' }> {
    if (err instanceof ResponseTooLarge) {
      return failed('response_too_large', `the answer is larger than ${HTTP_STEP_MAX_RESPONSE_BYTES} bytes`, false);
    }
    const e = err as Error & { code?: string; cause?: Error & { code?: string } };
    if (e instanceof UrlGuardError || e.cause instanceof UrlGuardError) {
      return failed('url_not_allowed', `url ${(e.cause instanceof UrlGuardError ? e.cause : e).message}`, false);
    }
    if (timedOut || e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError) {
      return failed('timeout', `no answer within ${timeoutMs} ms`, true);
    }
    if (aborted) return failed('aborted', 'the step was stopped (its timeout, or the run was cancelled)', true);
    if (e instanceof errors.InvalidArgumentError) return failed('invalid_request', e.message, false);
    const code = e.code ?? e.cause?.code;
    return failed('network_error', code ? `${code}: ${e.cause?.message ?? e.message}` : e.message, true);
  }
}

function failed(code: string, message: string, retryable: boolean): Extract<StepExecution, { kind: 'failed' }> {
  return { kind: 'failed', code, message, retryable };
}

/** 2xx: done; 408, 429 and 5xx: worth another try; anything else (3xx, other 4xx): not. */
function outcome(response: HttpStepResponse): StepExecution {
  const { status } = response;
  if (status >= 200 && status < 300) return { kind: 'done', output: response.body, response };
  const retryable = status === 408 || status === 429 || status >= 500;
  const message =
    status >= 300 && status < 400 ? `redirect (${status}) not followed` : `the server answered HTTP ${status}`;
  return failed(`http_${status}`, message, retryable);
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

/** Rendered header values as strings (a whole-template value may have rendered to a number or an object). */
function stringHeaders(rendered: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((rendered ?? {}) as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    out[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > HTTP_STEP_MAX_RESPONSE_BYTES) {
      body.destroy(); // the rest is never read
      throw new ResponseTooLarge();
    }
  }
  return Buffer.concat(chunks);
}

function keptHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of KEPT_RESPONSE_HEADERS) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** JSON when the answer says it is JSON and parses; text otherwise; null when there is no body. */
function parseBody(raw: Buffer, contentType: string | string[] | undefined): unknown {
  if (raw.length === 0) return null;
  const text = raw.toString('utf8');
  const type = (Array.isArray(contentType) ? contentType[0] : contentType) ?? '';
  if (/^application\/([\w.+-]+\+)?json\b/i.test(type.trim())) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}
