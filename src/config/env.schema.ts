import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBooleanString,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateBy,
  ValidateIf,
  validateSync,
} from 'class-validator';
import { IsWebhookSecret } from '../webhooks/webhook-secret';
import { parseCreditPrices } from '../credits/credit-prices';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

/** A comma-separated list of fal model ids: owner/app and an optional endpoint path. */
const FAL_MODEL_LIST =
  /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)+(,[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)+)*$/i;
/** A TCP port, 1-65535, as a pattern. */
const PORT = '([1-9]\\d{0,3}|[1-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])';

export const APP_ROLES = ['api', 'worker', 'all'] as const;
export type AppRole = (typeof APP_ROLES)[number];

/** Development-only secret so `npm start` works on a fresh machine; production refuses it (see JWT_SECRET). */
export const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';

/** Where the platform looks for Postgres and Redis when nothing says otherwise (see EMBEDDED_SERVICES). */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/media_tasks';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export const PROVIDERS_MODE_SETTINGS = ['auto', 'live', 'sandbox'] as const;
export type ProvidersModeSetting = (typeof PROVIDERS_MODE_SETTINGS)[number];
export type ProvidersMode = Exclude<ProvidersModeSetting, 'auto'>;

/** The variables that hold a real provider's key: with any of them set, PROVIDERS_MODE=auto means live. */
export const PROVIDER_KEY_VARIABLES = [
  'OPENAI_API_KEY',
  'STABILITY_API_KEY',
  'RUNWAY_API_KEY',
  'RUNPOD_API_KEY',
  'ASSEMBLYAI_API_KEY',
  'FAL_KEY',
  'GEMINI_API_KEY',
] as const;

export const EMBEDDED_SERVICES_MODES = ['auto', 'always', 'never'] as const;
export type EmbeddedServicesMode = (typeof EMBEDDED_SERVICES_MODES)[number];

/**
 * Every environment variable the platform reads, validated once at boot. Defaults make a fresh machine work;
 * `.env.example` lists the same names.
 */
export class EnvSchema {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV = 'development';

  @IsIn(APP_ROLES)
  APP_ROLE: AppRole = 'all';

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  HOST = '0.0.0.0';

  /**
   * Which peers' X-Forwarded-For is believed when the platform reads a client's address (the per-address limit, the
   * logs): `true` (any peer: only behind a proxy that overwrites the header), `false` (none), or a comma-separated
   * list of addresses, CIDR ranges and the names `loopback`, `linklocal`, `uniquelocal`. The default believes proxies
   * on loopback and private networks only, so a client on the internet cannot make up its address.
   */
  @Matches(/^(true|false|[0-9A-Za-z.:/]+(\s*,\s*[0-9A-Za-z.:/]+)*)$/, {
    message:
      'TRUST_PROXY must be true, false, or a comma-separated list of addresses, CIDR ranges or loopback, linklocal, uniquelocal',
  })
  TRUST_PROXY = 'loopback,linklocal,uniquelocal';

  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL = DEFAULT_DATABASE_URL;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(200)
  DATABASE_POOL_SIZE = 10;

  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  @ValidateBy({
    name: 'clusterWithoutDb',
    validator: {
      validate: (value, args) =>
        (args?.object as EnvSchema).REDIS_CLUSTER !== 'true' || !/^rediss?:\/\/[^/]+\/[1-9]/.test(String(value)),
      defaultMessage: () => 'REDIS_URL cannot name a database number when REDIS_CLUSTER=true (a cluster has only db 0)',
    },
  })
  REDIS_URL = DEFAULT_REDIS_URL;

  /**
   * `true`: REDIS_URL is one node of a Redis Cluster (any node; the client discovers the others and follows slot
   * moves and failovers).
   */
  @IsBooleanString()
  REDIS_CLUSTER = 'false';

  /**
   * Where the queues and the platform's shared state live: `redis` (REDIS_URL), `postgres` (the platform's own
   * database, nothing else needed), or `auto`: Redis when REDIS_URL is set or a Redis answers at the default address,
   * Postgres otherwise.
   */
  @IsIn(['auto', 'redis', 'postgres'])
  QUEUE_BACKEND = 'auto';

  /**
   * Development only: `auto` starts an embedded Postgres (under ./data/postgres) and the machine's redis-server (under
   * ./data/redis) when DATABASE_URL or REDIS_URL is left at its default and nothing answers there; `always` starts
   * both whatever the URLs say; `never` uses the URLs as they are. Production never starts them.
   */
  @IsIn(EMBEDDED_SERVICES_MODES)
  @ValidateBy({
    name: 'embeddedOutsideProduction',
    validator: {
      validate: (value, args) => !(value === 'always' && (args?.object as EnvSchema).NODE_ENV === 'production'),
      defaultMessage: () => 'EMBEDDED_SERVICES=always is refused when NODE_ENV=production',
    },
  })
  EMBEDDED_SERVICES: EmbeddedServicesMode = 'auto';

  /** Namespace of every Redis key the platform writes; lets several deployments (or test files) share one Redis. */
  @Matches(/^[A-Za-z0-9_-]{1,40}$/, { message: 'REDIS_PREFIX must be 1-40 letters, digits, _ or -' })
  REDIS_PREFIX = 'media';

  @ValidateIf((env: EnvSchema) => env.NODE_ENV === 'production')
  @IsString({ message: 'JWT_SECRET is required when NODE_ENV=production' })
  @MinLength(32, { message: 'JWT_SECRET must be at least 32 characters when NODE_ENV=production' })
  @Matches(/^(?!dev-only-secret-change-me)/, { message: 'JWT_SECRET must be changed from the development default' })
  JWT_SECRET: string = DEV_JWT_SECRET;

  /** When set, bearer tokens must carry this `iss` (and `npm run token` and the platform's own tokens set it). */
  @IsOptional()
  @IsString()
  @Length(1, 200)
  JWT_ISSUER?: string;

  /** When set, bearer tokens must carry this `aud` (and `npm run token` and the platform's own tokens set it). */
  @IsOptional()
  @IsString()
  @Length(1, 200)
  JWT_AUDIENCE?: string;

  /**
   * The platform's base URL as providers can reach it (https://media.example.com). When set, RunPod jobs carry a
   * webhook to it, so a finished job is picked up at once instead of at its next poll; unset, jobs are polled only.
   */
  @IsOptional()
  @Matches(/^(https?:\/\/[^\s/?#]+(\/[^\s?#]*)?)?$/, { message: 'PUBLIC_URL must be an http(s) URL without query' })
  PUBLIC_URL?: string;

  /** Bearer token GET /metrics requires when set; unset → /metrics is public (keep it off the public network). */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters' })
  METRICS_TOKEN?: string;

  /**
   * `live`: the real provider APIs; `sandbox`: emulators of them on loopback; `auto`: the sandbox outside production
   * while no provider key (PROVIDER_KEY_VARIABLES) is set, so a fresh `npm start` can run every task type, else live.
   */
  @IsIn(PROVIDERS_MODE_SETTINGS)
  PROVIDERS_MODE: ProvidersModeSetting = 'auto';

  /**
   * Lets requests made on a user's behalf (media downloads, webhooks) reach private and loopback addresses: for
   * local development and the test suite only.
   */
  @IsIn(['true', 'false'])
  @ValidateIf((env: EnvSchema) => env.NODE_ENV === 'production')
  @IsIn(['false'], { message: 'WEBHOOK_ALLOW_PRIVATE=true is refused when NODE_ENV=production' })
  WEBHOOK_ALLOW_PRIVATE = 'false';

  /** The only ports media URLs (`audio_url`, `image_url`, `url_video`…) may name, comma-separated; unset: any port. */
  @IsOptional()
  @Matches(new RegExp(`^${PORT}(\\s*,\\s*${PORT})*$`), {
    message: 'MEDIA_ALLOWED_PORTS must be a comma-separated list of ports (1-65535)',
  })
  MEDIA_ALLOWED_PORTS?: string;

  /**
   * Origins (`https://host[:port]`, comma-separated) provider output files may be downloaded from even at a private
   * address, besides the providers' base URLs (always allowed): e.g. a private MinIO a RunPod worker uploads to.
   */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s/?#,]+\/?(\s*,\s*https?:\/\/[^\s/?#,]+\/?)*$/, {
    message: 'PROVIDER_OUTPUT_ORIGINS must be a comma-separated list of http(s)://host[:port] origins',
  })
  PROVIDER_OUTPUT_ORIGINS?: string;

  /**
   * Signs webhooks of tasks that bring no `webhook_secret` of their own. A value starting with `whsec_` is base64 of
   * 24 to 64 bytes after the prefix (Standard Webhooks); any other value is used as its UTF-8 bytes. Without it, a
   * task with a `webhook_url` must bring its own secret.
   */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'WEBHOOK_SECRET must be at least 16 characters' })
  @IsWebhookSecret()
  WEBHOOK_SECRET?: string;

  /**
   * `true`: a task with a `webhook_url` needs a secret to sign with (its own `webhook_secret` or WEBHOOK_SECRET), and
   * is refused without one. `false` accepts it and delivers its webhooks unsigned, which receivers cannot tell from
   * forged ones: unsafe, for receivers that cannot check a signature; a production process warns of it at boot.
   */
  @IsIn(['true', 'false'])
  WEBHOOK_REQUIRE_SIGNATURE = 'true';

  /** Retries after the first attempt of a webhook delivery, before it becomes a dead letter. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(20)
  WEBHOOK_MAX_RETRIES = 3;

  /** Delay before each retry, in ms (the last one repeats if there are more retries than delays); ±20 % jitter. */
  @Matches(/^\d+(,\d+)*$/, { message: 'WEBHOOK_RETRY_DELAYS must be a comma-separated list of milliseconds' })
  WEBHOOK_RETRY_DELAYS = '1000,5000,15000';

  /** A delivery attempt must get its answer's headers and up to 64 KiB of body within this. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(120000)
  WEBHOOK_TIMEOUT_MS = 10000;

  /** Deliveries in flight per worker process. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  WEBHOOK_CONCURRENCY = 50;

  /**
   * `true`: the process that commits an event (an API process for task.created and an API cancel, a worker for the
   * rest) sends its webhook deliveries at once, up to WEBHOOK_CONCURRENCY in flight, the queue taking the rest and
   * the reconciler those a crash left unsent. `false`: every delivery goes through the `webhooks` queue, so only
   * worker processes make webhook requests (e.g. API processes without a way out of their network).
   */
  @IsIn(['true', 'false'])
  WEBHOOK_SEND_AT_COMMIT = 'true';

  /**
   * Delivery attempts per second to one destination host, across every worker (counted in Redis); attempts over it
   * wait for a later second (0: no limit). Bounds how hard tasks can make the platform hit a third party's server.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  WEBHOOK_HOST_RATE_PER_SECOND = 1000;

  /** Requests per minute per user, across every API process (0: no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  RATE_LIMIT_PER_MINUTE = 600;

  /**
   * Connections a user may hold open at once across every API process: live event streams, requests waiting with
   * `Prefer: wait` and the synchronous routes of the sources (0: no cap). Past it a stream is refused with 429 and a
   * wait is answered at once with 202.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  HELD_CONNECTIONS_PER_USER = 100;

  /** The same connections, all users together, one API process may hold open (0: no cap). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  HELD_CONNECTIONS_PER_PROCESS = 5000;

  /**
   * Requests refused for want of valid credentials (401, 403) per client address and minute, across every API
   * process; past it the address's requests without a bearer token get 429 until the minute is over (0: no limit).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE = 120;

  /** Largest body an inbound flow hook (POST /hooks/{hook_id}) takes; bigger ones get 413. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(64 * 1024 * 1024)
  HOOK_MAX_BYTES = 1024 * 1024;

  /** Requests per minute each inbound flow hook takes, across every API process; past it 429 (0: no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  HOOK_RATE_PER_MINUTE = 100;

  /** Unfinished (queued or running) tasks a user may have; a submit past it is refused with 429 (0: no cap). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  QUOTA_MAX_ACTIVE_TASKS = 0;

  /** Credits: each submit holds its price from the user's balance, or is refused with 403 (true | false). */
  @IsIn(['true', 'false'])
  CREDITS_ENABLED = 'false';

  /**
   * `key=credits` pairs over the defaults (image_edit=1, image_generation=1, video_generation=5, img2vid=5,
   * caption=2, addaudio=2, audio_transcription=2, subtitle_generation=1, cache_hit=0): a task type, a type and one of
   * its operations (`image_edit.generate=2`), or `cache_hit` (what a result served from the cache costs instead).
   */
  @IsOptional()
  @ValidateBy({
    name: 'creditPrices',
    validator: {
      validate: (value) => typeof value === 'string' && 'prices' in parseCreditPrices(value),
      defaultMessage: (args) => {
        const parsed = typeof args?.value === 'string' ? parseCreditPrices(args.value) : undefined;
        const problem = parsed && 'problem' in parsed ? parsed.problem : 'not a list';
        return `CREDITS_PRICES must look like "image_edit=1,image_edit.generate=2,cache_hit=0": ${problem}`;
      },
    },
  })
  CREDITS_PRICES?: string;

  /** How long a process caches an API key lookup, so a revocation reaches every process within it (0: no cache). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(5000)
  API_KEY_CACHE_TTL_MS = 5000;

  /**
   * How long a request holding an `Idempotency-Key` keeps it without a sign of life: a live request renews its lease
   * (every third of it) however long it waits; the key of a request whose process died is free again this long after
   * its last renewal.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(3_600_000)
  IDEMPOTENCY_LEASE_MS = 60000;

  /** The result cache (identical tasks answered from an earlier result): true | false. */
  @IsIn(['true', 'false'])
  CACHE_ENABLED = 'true';

  /**
   * Whose results a task may be answered from: `user` (its owner's own earlier tasks) or `global` (anyone's, which
   * tells a user that someone submitted the same input before).
   */
  @IsIn(['user', 'global'])
  CACHE_SCOPE: 'user' | 'global' = 'user';

  /** Folder of the cache's disk layer (entries kept 7 days). */
  @IsString()
  CACHE_DIR = './data/cache';

  /** Bytes the in-process layer may hold (entries kept 1 hour). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  CACHE_MEMORY_MAX_BYTES = 64 * 1024 * 1024;

  /** Bytes the disk layer may hold; the least recently used entries go first. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  CACHE_DISK_MAX_BYTES = 1024 * 1024 * 1024;

  /** The ffmpeg and ffprobe binaries the local video provider runs (Debian's package by default). */
  @IsString()
  FFMPEG_PATH = 'ffmpeg';

  @IsString()
  FFPROBE_PATH = 'ffprobe';

  /**
   * Sandbox mode: first of the emulators' consecutive loopback ports, one per vendor in the order of `VENDORS` in
   * sandbox.ts (0 = any free ports).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65500)
  SANDBOX_PORT = 4010;

  @IsOptional()
  @Matches(/^\d+$/, { message: 'SANDBOX_LATENCY_MS must be a number of milliseconds' })
  SANDBOX_LATENCY_MS?: string;

  @IsOptional()
  @Matches(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'SANDBOX_FAILURE_RATE must be between 0 and 1' })
  SANDBOX_FAILURE_RATE?: string;

  @IsOptional()
  @Matches(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'SANDBOX_RATE_LIMIT_RATE must be between 0 and 1' })
  SANDBOX_RATE_LIMIT_RATE?: string;

  @IsOptional()
  @Matches(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'SANDBOX_STUCK_RATE must be between 0 and 1' })
  SANDBOX_STUCK_RATE?: string;

  @IsOptional()
  @Matches(/^\d+$/, { message: 'SANDBOX_ASYNC_STEPS must be a whole number' })
  SANDBOX_ASYNC_STEPS?: string;

  /** Simulated RunPod jobs: ms of work per clip (an img2vid of n images runs n times this). */
  @IsOptional()
  @Matches(/^\d+$/, { message: 'SANDBOX_CLIP_MS must be a number of milliseconds' })
  SANDBOX_CLIP_MS?: string;

  /** How the RunPod emulator runs jobs: `ffmpeg` (real videos, the local provider's code) or `simulated`. */
  @IsOptional()
  @IsIn(['', 'ffmpeg', 'simulated'])
  SANDBOX_RUNPOD_EXECUTION?: string;

  @IsIn(['quality', 'speed', 'cost', 'reliability', 'load_balancing'])
  PROVIDER_STRATEGY = 'reliability';

  @IsOptional()
  @IsString()
  OPENAI_API_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'OPENAI_BASE_URL must be an http(s) URL' })
  OPENAI_BASE_URL = 'https://api.openai.com/v1';

  /** The chat model that translates subtitles cue by cue (a non-reasoning model keeps a translation fast and cheap). */
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, {
    message: 'OPENAI_SUBTITLE_MODEL must be a model name such as gpt-4.1-mini',
  })
  OPENAI_SUBTITLE_MODEL = 'gpt-4.1-mini';

  @IsOptional()
  @IsString()
  STABILITY_API_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'STABILITY_BASE_URL must be an http(s) URL' })
  STABILITY_BASE_URL = 'https://api.stability.ai';

  @IsOptional()
  @IsString()
  RUNWAY_API_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'RUNWAY_BASE_URL must be an http(s) URL' })
  RUNWAY_BASE_URL = 'https://api.dev.runwayml.com';

  @IsOptional()
  @IsString()
  RUNPOD_API_KEY?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,100}$/, { message: 'RUNPOD_ENDPOINT_ID must be an endpoint id' })
  RUNPOD_ENDPOINT_ID?: string;

  @Matches(/^https?:\/\/.+/, { message: 'RUNPOD_BASE_URL must be an http(s) URL' })
  RUNPOD_BASE_URL = 'https://api.runpod.ai/v2';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  RUNPOD_MAX_CONCURRENCY = 3;

  /** AssemblyAI transcription: the key goes as is in the `authorization` header (no "Bearer"). */
  @IsOptional()
  @IsString()
  ASSEMBLYAI_API_KEY?: string;

  /** https://api.eu.assemblyai.com keeps the audio and transcripts in the EU. */
  @Matches(/^https?:\/\/.+/, { message: 'ASSEMBLYAI_BASE_URL must be an http(s) URL' })
  ASSEMBLYAI_BASE_URL = 'https://api.assemblyai.com';

  /** fal's key (`key_id:key_secret`), sent as `Authorization: Key …`. */
  @IsOptional()
  @IsString()
  FAL_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'FAL_BASE_URL must be an http(s) URL' })
  FAL_BASE_URL = 'https://queue.fal.run';

  /**
   * Video models fal runs for video_generation, by fal model id: an id with `image-to-video` in it takes the start
   * image (`image_url`), any other one a prompt alone. The first of each kind is the default.
   */
  @Matches(FAL_MODEL_LIST, {
    message: 'FAL_VIDEO_MODELS must be a comma-separated list of fal model ids (owner/app/…)',
  })
  FAL_VIDEO_MODELS = 'fal-ai/pika/v2.2/text-to-video,fal-ai/pika/v2.2/image-to-video';

  /** Image models fal runs for image_generation (the first is the default). */
  @Matches(FAL_MODEL_LIST, {
    message: 'FAL_IMAGE_MODELS must be a comma-separated list of fal model ids (owner/app/…)',
  })
  FAL_IMAGE_MODELS = 'fal-ai/flux/dev';

  /** Google's Gemini API (image operations), sent as the `x-goog-api-key` header. */
  @IsOptional()
  @IsString()
  GEMINI_API_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'GEMINI_BASE_URL must be an http(s) URL' })
  GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com';

  /** The Gemini model that makes and edits images (generateContent with image output). */
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
    message: 'GEMINI_IMAGE_MODEL must be a model name such as gemini-2.5-flash-image',
  })
  GEMINI_IMAGE_MODEL = 'gemini-2.5-flash-image';

  /** Consecutive transient failures that open a provider's circuit. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  PROVIDER_CIRCUIT_THRESHOLD = 5;

  /** How long an open circuit keeps a provider out before one trial call, ms. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  PROVIDER_CIRCUIT_COOLDOWN_MS = 30000;

  /**
   * Multiplies the poll intervals async adapters ask for (Runway 5 s, RunPod 2–5 s). Keep 1 against real providers;
   * the sandbox and the tests use a small factor so async lifecycles take milliseconds.
   */
  @IsOptional()
  @Matches(/^(0(\.\d+)?|[1-9]\d*(\.\d+)?)$/, { message: 'PROVIDER_POLL_SCALE must be a positive number' })
  PROVIDER_POLL_SCALE?: string;

  /** Deadline of one HTTP call to a provider (the task's own timeout bounds the whole run). */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  PROVIDER_HTTP_TIMEOUT_MS = 60000;

  /**
   * Task jobs one worker process runs at once. Most of a task's time is spent waiting on a provider, Postgres or
   * Redis, so many run side by side; what does load the machine has a cap of its own (LOCAL_CPU_CONCURRENCY, the
   * providers' caps, IMAGE_EDIT_CONCURRENCY).
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(500)
  WORKER_CONCURRENCY = 200;

  /**
   * Work on this process's own CPU that may run at once (local ffmpeg's encodes, the image operations with sharp); the
   * rest of such tasks wait for a turn inside the process. Unset: the machine's cores (os.availableParallelism()).
   */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(256)
  LOCAL_CPU_CONCURRENCY?: number;

  /** Flow step jobs one worker process runs at a time (a step that waits holds none). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(500)
  FLOW_WORKER_CONCURRENCY = 10;

  /**
   * Image `data:` URLs one task may carry in its JSON body, decoded bytes together (the image app sends base64
   * images). POST /api/v1/media/images/edit takes bodies big enough for them; every other route keeps 1 MiB.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(64 * 1024 * 1024)
  IMAGE_INLINE_MAX_BYTES = 10 * 1024 * 1024;

  /**
   * Largest file POST /api/v1/media/uploads takes (streamed to storage, never held in memory); bigger ones get 413.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(5 * 1024 * 1024 * 1024)
  UPLOAD_MAX_BYTES = 100 * 1024 * 1024;

  /** Seconds an upload stays usable (as `upload:<id>` in a task's media fields); then it is deleted. */
  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(30 * 86400)
  UPLOAD_TTL = 86400;

  /**
   * How many image_edit tasks of each operation run at once across every worker, whatever the provider
   * (`operation=n` pairs; operations left out keep their default).
   */
  @Matches(/^(stencil|enhance|generate|color_match)=[1-9]\d*(,(stencil|enhance|generate|color_match)=[1-9]\d*)*$/, {
    message: 'IMAGE_EDIT_CONCURRENCY must be operation=n pairs (stencil, enhance, generate, color_match; n ≥ 1)',
  })
  IMAGE_EDIT_CONCURRENCY = 'stencil=5,enhance=3,generate=3,color_match=10';

  /**
   * An img2vid of at least twice this many images is split into parts that run side by side, each of at least this
   * many images (0: never split).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  FANOUT_PART_MIN_IMAGES = 10;

  /** Parts of a split img2vid at a provider without a concurrency cap (with one, as many parts as its cap). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  FANOUT_UNCAPPED_PARTS = 2;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(20)
  TASK_MAX_ATTEMPTS = 3;

  @Matches(/^\d+(,\d+)*$/, { message: 'TASK_RETRY_DELAYS must be a comma-separated list of milliseconds' })
  TASK_RETRY_DELAYS = '30000,300000,1800000';

  /** `type=seconds` pairs overriding the default timeout of a task type. */
  @IsOptional()
  @Matches(/^([a-z0-9_]+=\d+)(,[a-z0-9_]+=\d+)*$/, {
    message: 'TASK_TIMEOUTS must look like "image_generation=300,subtitle_generation=60"',
  })
  TASK_TIMEOUTS?: string;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  RECONCILE_INTERVAL_MS = 30000;

  /** A queued or processing task younger than this is never touched by the reconciler (its submit may be in flight). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RECONCILE_GRACE_MS = 15000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  QUEUE_JOB_TTL = 86400;

  /**
   * On SIGTERM the process exits within this, whatever state Postgres and Redis are in; running tasks get most of it
   * to finish (src/shutdown.ts).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SHUTDOWN_TIMEOUT_MS = 30000;

  /**
   * How long a worker's hold on a running task job lasts unless renewed (it renews it at half that): a worker that
   * dies without a word (kill -9, a lost host) gives its jobs back after about this long (BullMQ's lockDuration; the
   * stalled-job check runs as often).
   */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(600000)
  WORKER_LOCK_MS = 30000;

  /**
   * The synchronous routes of the video API of the sources (`POST /video/img2vid` without `/async`…) hold the request
   * until the job ends, as the sources did, for at most this long; then they answer 202 with the job's URLs.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3600)
  SOURCES_SYNC_WAIT_SECONDS = 900;

  /** Interval of the comment line a live event stream sends so proxies and clients keep an idle connection open. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(300000)
  SSE_HEARTBEAT_MS = 15000;

  /**
   * OpenTelemetry tracing: off unless set (the SDK is then never loaded). Where spans go, over OTLP/HTTP
   * (http://collector:4318); read by the SDK itself, with the other standard OTEL_* variables (src/telemetry).
   */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s?#]+$/, {
    message: 'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL without query, like http://collector:4318',
  })
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  /** The service the spans name; unset: media-tasks-api, media-tasks-worker or media-tasks, by APP_ROLE. */
  @IsOptional()
  @IsString()
  @Length(1, 100)
  OTEL_SERVICE_NAME?: string;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  @IsOptional()
  @IsBooleanString()
  LOG_PRETTY?: string;

  /** Where task outputs are copied (provider URLs expire): the local disk, or an S3-compatible bucket. */
  @IsIn(['local', 's3'])
  OUTPUT_STORAGE: 'local' | 's3' = 'local';

  @IsString()
  @MinLength(1)
  STORAGE_DIR = './data/outputs';

  /** Origin clients reach the API at, for absolute file URLs; unset → relative `/files/…` URLs. */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s?#]+$/, { message: 'PUBLIC_BASE_URL must be an http(s) URL without query or fragment' })
  PUBLIC_BASE_URL?: string;

  /** Lifetime of a file URL in seconds (S3 presigned URLs cannot exceed 7 days). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(604800)
  FILE_URL_TTL = 86400;

  /**
   * Days task outputs and uploads are kept in storage; older ones are deleted by the maintenance sweep and their tasks
   * marked `output.expired_at` (their links answer 410). 0 keeps everything.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(36500)
  OUTPUT_RETENTION_DAYS = 0;

  /** Key of local file URLs; unset → derived from JWT_SECRET. */
  @IsOptional()
  @IsString()
  @MinLength(32, { message: 'STORAGE_SIGNING_SECRET must be at least 32 characters' })
  STORAGE_SIGNING_SECRET?: string;

  @IsOptional()
  @Matches(/^https?:\/\/[^\s?#]+$/, { message: 'S3_ENDPOINT must be an http(s) URL' })
  S3_ENDPOINT?: string;

  @Matches(/^[a-z0-9-]{1,40}$/, { message: 'S3_REGION must be a region name like us-east-1' })
  S3_REGION = 'us-east-1';

  @ValidateIf((env: EnvSchema) => env.OUTPUT_STORAGE === 's3')
  @IsString({ message: 'S3_BUCKET is required when OUTPUT_STORAGE=s3' })
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'S3_BUCKET must be a valid bucket name' })
  S3_BUCKET?: string;

  /**
   * Endpoint written into the presigned links clients (and vendors) open, when they reach storage at another address
   * than this process does (`http://minio:9000` inside Compose, `http://localhost:9000` outside); unset → S3_ENDPOINT.
   */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s?#]+$/, { message: 'S3_PUBLIC_ENDPOINT must be an http(s) URL' })
  S3_PUBLIC_ENDPOINT?: string;

  /** Explicit keys; unset → the AWS SDK's default chain (AWS_* variables, shared files, IAM roles, STS). */
  @ValidateIf((env: EnvSchema) => env.S3_SECRET_ACCESS_KEY !== undefined)
  @IsString({ message: 'S3_ACCESS_KEY_ID is required when S3_SECRET_ACCESS_KEY is set' })
  S3_ACCESS_KEY_ID?: string;

  @ValidateIf((env: EnvSchema) => env.S3_ACCESS_KEY_ID !== undefined)
  @IsString({ message: 'S3_SECRET_ACCESS_KEY is required when S3_ACCESS_KEY_ID is set' })
  S3_SECRET_ACCESS_KEY?: string;

  /** MinIO and most self-hosted S3 need path-style URLs (http://host/bucket/key). */
  @IsBooleanString()
  S3_FORCE_PATH_STYLE = 'true';
}

/** Values never echoed in an error message or a log line. */
const SECRET_VARIABLES = new Set<string>([
  'JWT_SECRET',
  'METRICS_TOKEN',
  'WEBHOOK_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  ...PROVIDER_KEY_VARIABLES,
  'STORAGE_SIGNING_SECRET',
  'S3_SECRET_ACCESS_KEY',
]);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Validates an environment; throws ConfigError listing every bad variable by name. */
export function validateEnv(env: Record<string, string | undefined>): EnvSchema {
  const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = plainToInstance(EnvSchema, defined, { exposeDefaultValues: true });
  const errors = validateSync(parsed, { whitelist: false, forbidUnknownValues: false });
  if (errors.length > 0) {
    throw new ConfigError(
      errors.map((e) => {
        const got = SECRET_VARIABLES.has(e.property) ? '' : ` (got ${JSON.stringify(e.value)})`;
        return `${e.property}: ${Object.values(e.constraints ?? {}).join('; ')}${got}`;
      }),
    );
  }
  return parsed;
}

/**
 * PROVIDERS_MODE as the process runs it: `auto` is the sandbox outside production while no provider key is set, and
 * live otherwise (production's auto is always live: a deployment missing its keys must fail loudly, not emulate).
 */
export function resolveProvidersMode(env: EnvSchema): ProvidersMode {
  if (env.PROVIDERS_MODE !== 'auto') return env.PROVIDERS_MODE;
  if (env.NODE_ENV === 'production') return 'live';
  return PROVIDER_KEY_VARIABLES.some((name) => env[name]) ? 'live' : 'sandbox';
}
