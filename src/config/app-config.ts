import { createHmac } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseCreditPrices } from '../credits/credit-prices';
import type { ImageOperation } from '../tasks/task.enums';
import {
  AppRole,
  DEV_JWT_SECRET,
  EmbeddedServicesMode,
  EnvSchema,
  ProvidersMode,
  resolveProvidersMode,
  validateEnv,
} from './env.schema';

export interface StorageSettings {
  backend: 'local' | 's3';
  localDir: string;
  /** No trailing slash; '' → relative URLs. */
  publicBaseUrl: string;
  urlTtlSeconds: number;
  /** Key of local file URLs (never logged). */
  signingSecret: string;
  /** OUTPUT_RETENTION_DAYS; 0 keeps outputs. */
  retentionDays: number;
  s3: {
    endpoint: string;
    /** Endpoint of the presigned links clients get (S3_PUBLIC_ENDPOINT); unset → `endpoint`. */
    publicEndpoint?: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle: boolean;
  };
}

function loadDotEnv(): void {
  try {
    process.loadEnvFile('.env');
  } catch {
    // No .env file: the environment and the defaults are the configuration.
  }
}

/**
 * The one typed view of the configuration. Business code reads these getters, never `process.env`.
 */
export class AppConfig {
  private constructor(private readonly env: EnvSchema) {}

  /** Reads `.env` (when present, without overriding the real environment), then validates. */
  static fromProcess(): AppConfig {
    loadDotEnv();
    return new AppConfig(validateEnv(process.env));
  }

  static fromEnv(env: Record<string, string | undefined>): AppConfig {
    return new AppConfig(validateEnv(env));
  }

  get nodeEnv(): string {
    return this.env.NODE_ENV;
  }
  get isProduction(): boolean {
    return this.env.NODE_ENV === 'production';
  }
  get role(): AppRole {
    return this.env.APP_ROLE;
  }
  get runsApi(): boolean {
    return this.env.APP_ROLE !== 'worker';
  }
  get runsWorkers(): boolean {
    return this.env.APP_ROLE !== 'api';
  }
  get port(): number {
    return this.env.PORT;
  }
  get host(): string {
    return this.env.HOST;
  }
  /** Fastify's trustProxy: which peers' X-Forwarded-For is believed. */
  get trustProxy(): boolean | string {
    const value = this.env.TRUST_PROXY;
    return value === 'true' ? true : value === 'false' ? false : value;
  }
  get databaseUrl(): string {
    return this.env.DATABASE_URL;
  }
  get databasePoolSize(): number {
    return this.env.DATABASE_POOL_SIZE;
  }
  get redisUrl(): string {
    return this.env.REDIS_URL;
  }
  /** REDIS_URL is a seed node of a Redis Cluster. */
  get redisCluster(): boolean {
    return this.env.REDIS_CLUSTER === 'true';
  }
  /** Whether boot may start Postgres and Redis of its own; always `never` in production. */
  get embeddedServices(): EmbeddedServicesMode {
    return this.isProduction ? 'never' : this.env.EMBEDDED_SERVICES;
  }
  get redisPrefix(): string {
    return this.env.REDIS_PREFIX;
  }
  /** The platform's base URL as providers reach it (no trailing slash), or undefined. */
  get publicUrl(): string | undefined {
    return this.env.PUBLIC_URL ? this.env.PUBLIC_URL.replace(/\/+$/, '') : undefined;
  }
  get jwtSecret(): string {
    return this.env.JWT_SECRET;
  }
  /** The `iss` and `aud` every bearer token must carry, when set. */
  get jwtIssuer(): string | undefined {
    return this.env.JWT_ISSUER || undefined;
  }
  get jwtAudience(): string | undefined {
    return this.env.JWT_AUDIENCE || undefined;
  }
  /** JWT_SECRET is the published development default (refused in production). */
  get usesDevJwtSecret(): boolean {
    return this.env.JWT_SECRET === DEV_JWT_SECRET;
  }
  /** Bearer token of GET /metrics; undefined → public. Never logged. */
  get metricsToken(): string | undefined {
    return this.env.METRICS_TOKEN || undefined;
  }
  /** `auto` until boot resolves it to the backend it found (see QUEUE_BACKEND). */
  get queueBackend(): 'auto' | 'redis' | 'postgres' {
    return this.env.QUEUE_BACKEND as 'auto' | 'redis' | 'postgres';
  }
  /** The providers this process talks to: PROVIDERS_MODE with `auto` resolved (resolveProvidersMode). */
  get providersMode(): ProvidersMode {
    return resolveProvidersMode(this.env);
  }
  /** Whether `auto` chose the sandbox for want of a provider key (the start-up line says so, and how to change it). */
  get providersModeDefaulted(): boolean {
    return this.env.PROVIDERS_MODE === 'auto' && this.providersMode === 'sandbox';
  }
  get providerStrategy(): string {
    return this.env.PROVIDER_STRATEGY;
  }
  /** Per-vendor settings; in sandbox mode the base URLs are the emulators' and the keys are the sandbox's. */
  get openai(): { apiKey?: string; baseUrl: string; subtitleModel: string } {
    return {
      apiKey: this.env.OPENAI_API_KEY,
      baseUrl: this.env.OPENAI_BASE_URL.replace(/\/+$/, ''),
      subtitleModel: this.env.OPENAI_SUBTITLE_MODEL,
    };
  }
  get stability(): { apiKey?: string; baseUrl: string } {
    return { apiKey: this.env.STABILITY_API_KEY, baseUrl: this.env.STABILITY_BASE_URL.replace(/\/+$/, '') };
  }
  /** Decoded bytes of the image data: URLs one task may carry (IMAGE_INLINE_MAX_BYTES). */
  get imageInlineMaxBytes(): number {
    return this.env.IMAGE_INLINE_MAX_BYTES;
  }

  /** Uploads: the largest file taken (UPLOAD_MAX_BYTES) and how long one stays usable (UPLOAD_TTL, seconds). */
  get uploads(): { maxBytes: number; ttlSeconds: number } {
    return { maxBytes: this.env.UPLOAD_MAX_BYTES, ttlSeconds: this.env.UPLOAD_TTL };
  }

  /** IMAGE_EDIT_CONCURRENCY: the cluster-wide cap of each image operation. */
  get imageEditConcurrency(): Record<ImageOperation, number> {
    const caps: Record<ImageOperation, number> = { stencil: 5, enhance: 3, generate: 3, color_match: 10 };
    for (const pair of this.env.IMAGE_EDIT_CONCURRENCY.split(',')) {
      const [operation, n] = pair.split('=');
      caps[operation as ImageOperation] = Number(n);
    }
    return caps;
  }

  /** The body limit of the routes that take inline images: their base64 and 1 MiB for the rest of the body. */
  get inlineImagesBodyLimit(): number {
    return Math.ceil(this.env.IMAGE_INLINE_MAX_BYTES / 3) * 4 + 1024 * 1024;
  }

  get runway(): { apiKey?: string; baseUrl: string } {
    return { apiKey: this.env.RUNWAY_API_KEY, baseUrl: this.env.RUNWAY_BASE_URL.replace(/\/+$/, '') };
  }
  get runpod(): { apiKey?: string; endpointId?: string; baseUrl: string; maxConcurrency: number } {
    return {
      apiKey: this.env.RUNPOD_API_KEY,
      endpointId: this.env.RUNPOD_ENDPOINT_ID,
      baseUrl: this.env.RUNPOD_BASE_URL.replace(/\/+$/, ''),
      maxConcurrency: this.env.RUNPOD_MAX_CONCURRENCY,
    };
  }
  get assemblyai(): { apiKey?: string; baseUrl: string } {
    return { apiKey: this.env.ASSEMBLYAI_API_KEY, baseUrl: this.env.ASSEMBLYAI_BASE_URL.replace(/\/+$/, '') };
  }
  get fal(): { apiKey?: string; baseUrl: string; videoModels: string[]; imageModels: string[] } {
    const list = (value: string) => [...new Set(value.split(',').map((id) => id.trim()))];
    return {
      apiKey: this.env.FAL_KEY || undefined,
      baseUrl: this.env.FAL_BASE_URL.replace(/\/+$/, ''),
      videoModels: list(this.env.FAL_VIDEO_MODELS),
      imageModels: list(this.env.FAL_IMAGE_MODELS),
    };
  }
  get gemini(): { apiKey?: string; baseUrl: string; imageModel: string } {
    return {
      apiKey: this.env.GEMINI_API_KEY || undefined,
      baseUrl: this.env.GEMINI_BASE_URL.replace(/\/+$/, ''),
      imageModel: this.env.GEMINI_IMAGE_MODEL,
    };
  }
  get circuit(): { threshold: number; cooldownMs: number } {
    return { threshold: this.env.PROVIDER_CIRCUIT_THRESHOLD, cooldownMs: this.env.PROVIDER_CIRCUIT_COOLDOWN_MS };
  }
  get providerPollScale(): number {
    const scale = Number(this.env.PROVIDER_POLL_SCALE ?? 1);
    return scale > 0 ? scale : 1;
  }
  get allowPrivateAddresses(): boolean {
    return this.env.WEBHOOK_ALLOW_PRIVATE === 'true';
  }
  /** Ports media URLs may name; empty: any. */
  get mediaAllowedPorts(): number[] {
    return listOf(this.env.MEDIA_ALLOWED_PORTS).map(Number);
  }
  /** Origins provider outputs may be fetched from at private addresses: every provider's base URL, and the listed. */
  get providerOutputOrigins(): string[] {
    const bases = [this.openai, this.stability, this.runway, this.runpod].map((p) => p.baseUrl);
    return [...bases, ...listOf(this.env.PROVIDER_OUTPUT_ORIGINS)];
  }
  get sandboxPort(): number {
    return this.env.SANDBOX_PORT;
  }
  get providerHttpTimeoutMs(): number {
    return this.env.PROVIDER_HTTP_TIMEOUT_MS;
  }
  get workerConcurrency(): number {
    return this.env.WORKER_CONCURRENCY;
  }
  /** LOCAL_CPU_CONCURRENCY, or the machine's cores. */
  get localCpuConcurrency(): number {
    return this.env.LOCAL_CPU_CONCURRENCY ?? availableParallelism();
  }
  get flowWorkerConcurrency(): number {
    return this.env.FLOW_WORKER_CONCURRENCY;
  }
  get fanout(): { partMinImages: number; uncappedParts: number } {
    return { partMinImages: this.env.FANOUT_PART_MIN_IMAGES, uncappedParts: this.env.FANOUT_UNCAPPED_PARTS };
  }
  get taskMaxAttempts(): number {
    return this.env.TASK_MAX_ATTEMPTS;
  }
  get webhook(): {
    secret?: string;
    requireSignature: boolean;
    maxRetries: number;
    retryDelaysMs: number[];
    timeoutMs: number;
    concurrency: number;
    hostRatePerSecond: number;
    sendAtCommit: boolean;
  } {
    return {
      secret: this.env.WEBHOOK_SECRET || undefined,
      requireSignature: this.env.WEBHOOK_REQUIRE_SIGNATURE !== 'false',
      maxRetries: this.env.WEBHOOK_MAX_RETRIES,
      retryDelaysMs: this.env.WEBHOOK_RETRY_DELAYS.split(',').map(Number),
      timeoutMs: this.env.WEBHOOK_TIMEOUT_MS,
      concurrency: this.env.WEBHOOK_CONCURRENCY,
      hostRatePerSecond: this.env.WEBHOOK_HOST_RATE_PER_SECOND,
      sendAtCommit: this.env.WEBHOOK_SEND_AT_COMMIT !== 'false',
    };
  }
  get rateLimitPerMinute(): number {
    return this.env.RATE_LIMIT_PER_MINUTE;
  }
  /** Inbound flow hooks: the largest body (HOOK_MAX_BYTES) and the requests per minute per hook (HOOK_RATE_PER_MINUTE). */
  get hooks(): { maxBytes: number; ratePerMinute: number } {
    return { maxBytes: this.env.HOOK_MAX_BYTES, ratePerMinute: this.env.HOOK_RATE_PER_MINUTE };
  }
  /** Caps on connections held open (streams, waits); 0 = no cap. */
  get heldConnections(): { perUser: number; perProcess: number } {
    return { perUser: this.env.HELD_CONNECTIONS_PER_USER, perProcess: this.env.HELD_CONNECTIONS_PER_PROCESS };
  }
  get rateLimitUnauthenticatedPerMinute(): number {
    return this.env.RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE;
  }
  get quotaMaxActiveTasks(): number {
    return this.env.QUOTA_MAX_ACTIVE_TASKS;
  }
  /** CREDITS_ENABLED and CREDITS_PRICES (over their defaults; validated at boot). */
  get credits(): { enabled: boolean; prices: Record<string, number> } {
    const parsed = parseCreditPrices(this.env.CREDITS_PRICES);
    return { enabled: this.env.CREDITS_ENABLED === 'true', prices: 'prices' in parsed ? parsed.prices : {} };
  }
  /** ≤ 5 s: a revoked key may still open requests on another process for this long. */
  get apiKeyCacheTtlMs(): number {
    return this.env.API_KEY_CACHE_TTL_MS;
  }
  get idempotencyLeaseMs(): number {
    return this.env.IDEMPOTENCY_LEASE_MS;
  }
  get cache(): {
    enabled: boolean;
    scope: 'user' | 'global';
    dir: string;
    memoryMaxBytes: number;
    diskMaxBytes: number;
  } {
    return {
      enabled: this.env.CACHE_ENABLED === 'true',
      scope: this.env.CACHE_SCOPE,
      dir: this.env.CACHE_DIR,
      memoryMaxBytes: Math.max(1024, this.env.CACHE_MEMORY_MAX_BYTES),
      diskMaxBytes: this.env.CACHE_DISK_MAX_BYTES,
    };
  }
  get ffmpeg(): { ffmpegPath: string; ffprobePath: string } {
    return { ffmpegPath: this.env.FFMPEG_PATH, ffprobePath: this.env.FFPROBE_PATH };
  }
  get taskRetryDelaysMs(): number[] {
    return this.env.TASK_RETRY_DELAYS.split(',').map(Number);
  }
  /** Per-type timeout overrides in seconds, from TASK_TIMEOUTS. */
  get taskTimeoutOverrides(): Record<string, number> {
    if (!this.env.TASK_TIMEOUTS) return {};
    return Object.fromEntries(
      this.env.TASK_TIMEOUTS.split(',').map((pair) => {
        const [type, seconds] = pair.split('=');
        return [type, Number(seconds)];
      }),
    );
  }
  get reconcileIntervalMs(): number {
    return this.env.RECONCILE_INTERVAL_MS;
  }
  get reconcileGraceMs(): number {
    return this.env.RECONCILE_GRACE_MS;
  }
  get queueJobTtlSeconds(): number {
    return this.env.QUEUE_JOB_TTL;
  }
  get sourcesSyncWaitSeconds(): number {
    return this.env.SOURCES_SYNC_WAIT_SECONDS;
  }
  get workerLockMs(): number {
    return this.env.WORKER_LOCK_MS;
  }
  get shutdownTimeoutMs(): number {
    return this.env.SHUTDOWN_TIMEOUT_MS;
  }
  get sseHeartbeatMs(): number {
    return this.env.SSE_HEARTBEAT_MS;
  }
  get logLevel(): string {
    return this.env.LOG_LEVEL;
  }
  get logPretty(): boolean {
    return this.env.LOG_PRETTY === 'true';
  }
  /** Output storage; the signing secret defaults to HMAC('storage', JWT_SECRET) so one secret suffices. */
  get storage(): StorageSettings {
    const env = this.env;
    const region = env.S3_REGION;
    return {
      backend: env.OUTPUT_STORAGE,
      localDir: env.STORAGE_DIR,
      publicBaseUrl: (env.PUBLIC_BASE_URL ?? '').replace(/\/+$/, ''),
      urlTtlSeconds: env.FILE_URL_TTL,
      retentionDays: env.OUTPUT_RETENTION_DAYS,
      signingSecret:
        env.STORAGE_SIGNING_SECRET ?? createHmac('sha256', 'storage').update(env.JWT_SECRET).digest('base64url'),
      s3: {
        endpoint: (env.S3_ENDPOINT ?? `https://s3.${region}.amazonaws.com`).replace(/\/+$/, ''),
        publicEndpoint: env.S3_PUBLIC_ENDPOINT?.replace(/\/+$/, ''),
        region,
        bucket: env.S3_BUCKET ?? '',
        accessKeyId: env.S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? '',
        forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true' || env.S3_FORCE_PATH_STYLE === '1',
      },
    };
  }
}

/** A comma-separated setting as a list; unset or empty: none. */
function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
