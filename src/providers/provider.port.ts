import { FieldProblem } from '../common/domain-exception';
import { TaskRequest, taskRequestOf } from '../tasks/task-input';
import { TaskType } from '../tasks/task.enums';

export interface Cost {
  amount: number;
  currency: 'USD';
}

/**
 * One file a provider produced: small bytes in hand, a local file (big outputs: streamed into storage, never read
 * whole), or a (short-lived) URL the platform copies into its storage.
 */
export interface ProviderArtifact {
  contentType: string;
  data?: Buffer;
  /** A local file the provider made and hands over: storage may move it; what is left goes at `release`. */
  file?: string;
  url?: string;
  /** Suggested file name (with extension); the platform may rename it. */
  filename?: string;
}

export interface ProviderOutput {
  /** Files to keep: copied into storage by the platform before the task completes. */
  artifacts: ProviderArtifact[];
  /** Everything else worth returning (transcript text, revised prompt, seed…), merged into `task.output`. */
  data?: Record<string, unknown>;
  /**
   * Made by a provider emulator (PROVIDERS_MODE=sandbox). Adapters leave it unset: the registry sets it on the outputs
   * of a provider whose base URL is an emulator's (emulated-provider.ts).
   */
  sandbox?: boolean;
  /** Frees what the artifacts' files hold (the provider's temp folder); the platform calls it once it is done. */
  release?: () => Promise<void>;
}

/** Stored on the task (`provider_job`) so a restarted worker re-attaches instead of submitting again. */
export interface ProviderJobRef {
  id: string;
  [key: string]: unknown;
}

/** What the platform hands a provider for one run of a task, besides the task's type and input. */
export interface ProviderRun {
  taskId: string;
  /** Aborted on cancel or timeout: pass it to every HTTP call. */
  signal: AbortSignal;
  /** 0..1; the platform throttles the events it emits. */
  reportProgress(progress: number): void;
}

/** One run of a task of type `T`: its type and input (`switch (ctx.type)` narrows `ctx.input`), and the run's handles. */
export type ProviderContext<T extends TaskType = TaskType> = TaskRequest<T> & ProviderRun;

/** The context of one run of a stored task: its input typed by its type (see taskRequestOf). */
export function providerContext(
  task: { type: TaskType; input: Record<string, unknown> },
  run: ProviderRun,
): ProviderContext {
  return { ...taskRequestOf(task), ...run };
}

/**
 * A provider's problem with one field of an input, in the words the API answers (`"n: dall-e-3 makes one image per
 * request"`): the message starts with the field's name.
 */
export function fieldProblem(field: string, detail: string): FieldProblem {
  return { field, message: `${field}: ${detail}` };
}

export type StartOutcome =
  | { kind: 'completed'; output: ProviderOutput; cost?: Cost }
  /** An async provider accepted the job: poll it after `pollAfterMs` (no worker slot is held meanwhile). */
  | { kind: 'submitted'; job: ProviderJobRef; pollAfterMs: number };

export type PollOutcome =
  | { kind: 'completed'; output: ProviderOutput; cost?: Cost }
  | {
      kind: 'running';
      progress?: number;
      pollAfterMs: number;
      /**
       * The job's place in the provider's own queue (1: next to run), when the provider tells it; shown as the task's
       * `queue_position` while it waits there.
       */
      queuePosition?: number;
    };

/**
 * The port every provider adapter implements (one folder per vendor under adapters/). Adapters are stateless,
 * put a timeout on every call, and turn every failure into a ProviderError with a stable code and a kind.
 * `T` is the task types an adapter runs: its methods receive only those types' inputs, already checked against their
 * DTOs, so an adapter checks only what it cannot do of what the DTO allows.
 */
export abstract class MediaProvider<T extends TaskType = TaskType> {
  abstract readonly name: string;
  abstract readonly taskTypes: readonly T[];
  /** 0..1: how good the output is, for the `quality` strategy. */
  readonly qualityScore: number = 0.5;
  /** Human summary of the pricing, shown by GET /providers. */
  readonly costModel: string = 'free';
  /**
   * How the provider reads media inputs: `fetched` here (downloadMedia, which reads `upload:<id>` from storage), or
   * `linked`: their URLs are handed to the vendor, which fetches them itself, so the registry gives such a provider
   * `upload:<id>` references as signed links of the stored files.
   */
  readonly mediaInputs: 'fetched' | 'linked' = 'fetched';

  /** Unconfigured providers (no key) are listed but never chosen. */
  abstract isConfigured(): boolean;

  /**
   * The vendor API this provider calls, as configured (its `*_BASE_URL`); undefined for providers that run in this
   * process.
   */
  baseUrl(): string | undefined {
    return undefined;
  }

  /**
   * Whether this provider is the one to try first for the task when the task asks for no strategy (a free provider
   * on the worker, before vendors that charge for the same work); the strategy still orders the rest.
   */
  isDefaultFor(_task: TaskRequest<T>): boolean {
    return false;
  }

  /** Jobs this provider may run at once across the whole cluster (undefined: no cap of its own). */
  maxConcurrency(): number | undefined {
    return undefined;
  }

  /** Price of running this input, from the provider's published prices. */
  estimateCost(_task: TaskRequest<T>): Cost {
    return { amount: 0, currency: 'USD' };
  }

  /** Submit-time checks of what this provider cannot do with the input, by field. */
  validate(_task: TaskRequest<T>): FieldProblem[] {
    return [];
  }

  abstract start(ctx: ProviderContext<T>): Promise<StartOutcome>;

  /** Async providers: the job's state now. */
  poll(_ctx: ProviderContext<T>, _job: ProviderJobRef): Promise<PollOutcome> {
    return Promise.reject(new Error(`${this.name} has no async jobs`));
  }

  /** Async providers: stop the job at the provider (best effort). */
  cancel(_job: ProviderJobRef): Promise<void> {
    return Promise.resolve();
  }

  supports(type: TaskType): type is T {
    return (this.taskTypes as readonly TaskType[]).includes(type);
  }

  /**
   * The submit-time checks again before anything is paid for (a task may predate a check): a permanent failure with
   * `code` and the problems' messages.
   */
  protected assertValid(task: TaskRequest<T>, code: ProviderErrorCode): void {
    const problems = this.validate(task);
    if (problems.length > 0) throw ProviderError.permanent(code, problems.map((p) => p.message).join('; '));
  }
}

/** A provider failure with its kind: only retryable ones are tried again (or on another provider). */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    /** HTTP status the provider answered, when there was one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }

  static permanent(code: string, message: string, status?: number): ProviderError {
    return new ProviderError(code, message, false, undefined, status);
  }

  static transient(code: string, message: string, retryAfterMs?: number, status?: number): ProviderError {
    return new ProviderError(code, message, true, retryAfterMs, status);
  }
}

/** Stable `error.code` values adapters use. */
export enum ProviderErrorCode {
  RateLimited = 'rate_limited',
  Unavailable = 'provider_unavailable',
  Timeout = 'provider_timeout',
  Network = 'network_error',
  InvalidRequest = 'invalid_request',
  ContentPolicy = 'content_policy',
  /** The model answered without the image it was asked for (text only, or nothing), for no safety reason. */
  NoImage = 'provider_no_image',
  AuthFailed = 'provider_auth_failed',
  NotFound = 'provider_not_found',
  JobFailed = 'provider_job_failed',
  BadResponse = 'provider_bad_response',
  InputUnreachable = 'input_unreachable',
  InputTooLarge = 'input_too_large',
  InputInvalid = 'input_invalid',
}

/** DI token of the list of adapters. */
export const MEDIA_PROVIDERS = Symbol('MEDIA_PROVIDERS');
