import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBooleanString,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateIf,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

export const APP_ROLES = ['api', 'worker', 'all'] as const;
export type AppRole = (typeof APP_ROLES)[number];

/** Development-only secret so `npm start` works on a fresh machine; production refuses it (see JWT_SECRET). */
export const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';

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

  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/media_tasks';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(200)
  DATABASE_POOL_SIZE = 10;

  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL = 'redis://127.0.0.1:6379';

  /** Namespace of every Redis key the platform writes; lets several deployments (or test files) share one Redis. */
  @Matches(/^[A-Za-z0-9_-]{1,40}$/, { message: 'REDIS_PREFIX must be 1-40 letters, digits, _ or -' })
  REDIS_PREFIX = 'media';

  @ValidateIf((env: EnvSchema) => env.NODE_ENV === 'production')
  @IsString({ message: 'JWT_SECRET is required when NODE_ENV=production' })
  @MinLength(32, { message: 'JWT_SECRET must be at least 32 characters when NODE_ENV=production' })
  @Matches(/^(?!dev-only-secret-change-me)/, { message: 'JWT_SECRET must be changed from the development default' })
  JWT_SECRET: string = DEV_JWT_SECRET;

  @IsIn(['live', 'sandbox'])
  PROVIDERS_MODE = 'live';

  @IsIn(['quality', 'speed', 'cost', 'reliability', 'load_balancing'])
  PROVIDER_STRATEGY = 'reliability';

  @IsOptional()
  @IsString()
  OPENAI_API_KEY?: string;

  @Matches(/^https?:\/\/.+/, { message: 'OPENAI_BASE_URL must be an http(s) URL' })
  OPENAI_BASE_URL = 'https://api.openai.com/v1';

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

  /** Deadline of one HTTP call to a provider (the task's own timeout bounds the whole run). */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  PROVIDER_HTTP_TIMEOUT_MS = 60000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(500)
  WORKER_CONCURRENCY = 5;

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

  @Transform(toInt)
  @IsInt()
  @Min(0)
  SHUTDOWN_TIMEOUT_MS = 30000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  @IsOptional()
  @IsBooleanString()
  LOG_PRETTY?: string;
}

/** Values never echoed in an error message or a log line. */
const SECRET_VARIABLES = new Set([
  'JWT_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  'OPENAI_API_KEY',
  'STABILITY_API_KEY',
  'RUNWAY_API_KEY',
  'RUNPOD_API_KEY',
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
