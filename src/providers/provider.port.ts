import { TaskType } from '../tasks/task.enums';

export interface ProviderRunRequest {
  taskId: string;
  type: TaskType;
  input: Record<string, unknown>;
  /** Aborted on cancel or timeout: adapters pass it to every call they make. */
  signal: AbortSignal;
  /** 0..1; the platform throttles the events it emits. */
  reportProgress(progress: number): void;
}

export interface ProviderResult {
  output: Record<string, unknown>;
  cost?: { amount: number; currency: string };
}

/**
 * The port every provider adapter implements (one folder per vendor under adapters/). Adapters are stateless and
 * classify every failure as a ProviderError.
 */
export abstract class MediaProvider {
  abstract readonly name: string;
  abstract readonly taskTypes: readonly TaskType[];
  /** Unconfigured providers (no key) are listed but never chosen. */
  abstract isConfigured(): boolean;
  abstract run(request: ProviderRunRequest): Promise<ProviderResult>;

  supports(type: TaskType): boolean {
    return this.taskTypes.includes(type);
  }
}

/** A provider failure with its kind: only retryable ones are tried again. */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }

  static permanent(code: string, message: string): ProviderError {
    return new ProviderError(code, message, false);
  }

  static transient(code: string, message: string, retryAfterMs?: number): ProviderError {
    return new ProviderError(code, message, true, retryAfterMs);
  }
}

/** DI token of the list of adapters. */
export const MEDIA_PROVIDERS = Symbol('MEDIA_PROVIDERS');
