/**
 * The slice of the RunwayML developer API (X-Runway-Version 2024-11-06) the adapter and its emulator speak. Shapes
 * follow runwayml/sdk-node's generated types (see PROVIDERS.md §4).
 */

export const RUNWAY_API_VERSION = '2024-11-06';

/** promptText limit, in UTF-16 code units (what String#length counts). */
export const RUNWAY_PROMPT_MAX = 1000;

export const RUNWAY_VIDEO_MODEL = 'gen4_turbo';
export const RUNWAY_IMAGE_MODEL = 'gen4_image';

/** gen4_turbo accepts 2–10 s of video. */
export const RUNWAY_MIN_DURATION_S = 2;
export const RUNWAY_MAX_DURATION_S = 10;

/** Runway says not to expect task updates more often than every 5 s. */
export const RUNWAY_POLL_MS = 5000;

/**
 * A credit is $0.01 (100 per dollar); gen4_turbo costs 5 credits per second of video, gen4_image 5 (720p) or 8 (1080p)
 * per image.
 */
export const RUNWAY_CREDITS_PER_USD = 100;
export const RUNWAY_VIDEO_CREDITS_PER_S = 5;
export const RUNWAY_IMAGE_CREDITS = { '720p': 5, '1080p': 8 } as const;

export const RUNWAY_VIDEO_RATIOS = ['1280:720', '720:1280', '1104:832', '832:1104', '960:960', '1584:672'] as const;
export type RunwayVideoRatio = (typeof RUNWAY_VIDEO_RATIOS)[number];

/** gen4_image ratios by price tier (Runway's docs group them so). */
export const RUNWAY_IMAGE_RATIOS_720P = ['1280:720', '720:1280', '720:720', '960:720', '720:960', '1680:720'] as const;
export const RUNWAY_IMAGE_RATIOS_1080P = [
  '1920:1080',
  '1080:1920',
  '1024:1024',
  '1360:768',
  '1080:1080',
  '1168:880',
  '1440:1080',
  '1080:1440',
  '1808:768',
  '2112:912',
] as const;
export type RunwayImageRatio = (typeof RUNWAY_IMAGE_RATIOS_720P)[number] | (typeof RUNWAY_IMAGE_RATIOS_1080P)[number];
export const RUNWAY_IMAGE_RATIOS: readonly RunwayImageRatio[] = [
  ...RUNWAY_IMAGE_RATIOS_720P,
  ...RUNWAY_IMAGE_RATIOS_1080P,
];

export interface RunwayImageToVideoRequest {
  model: typeof RUNWAY_VIDEO_MODEL;
  /** HTTPS URL or data URI of the first frame. */
  promptImage: string | { uri: string; position: 'first' | 'last' }[];
  promptText?: string;
  ratio: RunwayVideoRatio;
  duration?: number;
  seed?: number;
}

export interface RunwayTextToImageRequest {
  model: typeof RUNWAY_IMAGE_MODEL;
  promptText: string;
  ratio: RunwayImageRatio;
  seed?: number;
}

/** Answer of both generation endpoints. */
export interface RunwayCreateResponse {
  id: string;
}

export type RunwayTaskStatus = 'PENDING' | 'THROTTLED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** GET /v1/tasks/{id}. */
export interface RunwayTask {
  id: string;
  status: RunwayTaskStatus;
  createdAt?: string;
  /** RUNNING only: 0..1. */
  progress?: number;
  /** SUCCEEDED only: signed URLs that expire in 24–48 h. */
  output?: string[];
  /** FAILED only: human text and an optional machine code such as SAFETY.INPUT.TEXT or INTERNAL. */
  failure?: string;
  failureCode?: string;
}

/** Runway's 4xx body. */
export interface RunwayErrorBody {
  error?: string;
}

/** What `start` stores on the task so any worker can poll, price and name the result later. */
export interface RunwayJob {
  id: string;
  kind: 'video' | 'image';
  model: string;
  ratio: string;
  /** Seconds of video asked for (video only). */
  duration?: number;
  [key: string]: unknown;
}
