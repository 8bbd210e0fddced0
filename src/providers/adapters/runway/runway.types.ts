/**
 * The slice of the RunwayML developer API (X-Runway-Version 2024-11-06) the adapter and its emulator speak. Shapes
 * follow runwayml/sdk-node's generated types (see docs/providers.md).
 */

export const RUNWAY_API_VERSION = '2024-11-06';

/** promptText limit, in UTF-16 code units (what String#length counts). */
export const RUNWAY_PROMPT_MAX = 1000;

export const RUNWAY_IMAGE_MODEL = 'gen4_image';

/** Runway says not to expect task updates more often than every 5 s. */
export const RUNWAY_POLL_MS = 5000;

/** A credit is $0.01 (100 per dollar); gen4_image costs 5 (720p) or 8 (1080p) credits per image. */
export const RUNWAY_CREDITS_PER_USD = 100;
export const RUNWAY_IMAGE_CREDITS = { '720p': 5, '1080p': 8 } as const;

/** Frames of the gen4 models' image_to_video (gen4.5 and gen4_turbo). */
export const RUNWAY_GEN4_RATIOS = ['1280:720', '720:1280', '1104:832', '832:1104', '960:960', '1584:672'] as const;
/** Frames of the Veo models, on both endpoints. */
export const RUNWAY_VEO_RATIOS = ['1280:720', '720:1280', '1920:1080', '1080:1920'] as const;

export const RUNWAY_VIDEO_MODELS = ['gen4.5', 'gen4_turbo', 'veo3.1', 'veo3.1_fast', 'veo3'] as const;
export type RunwayVideoModel = (typeof RUNWAY_VIDEO_MODELS)[number];

/** What Runway accepts from one video model, per runwayml/sdk-node's TextToVideo and ImageToVideo params. */
export interface RunwayVideoModelSpec {
  /** Ratios on POST /v1/text_to_video; empty when the model needs a start image. */
  textRatios: readonly string[];
  /** Ratios on POST /v1/image_to_video. */
  imageRatios: readonly string[];
  /** Whole seconds the model makes, in ascending order. */
  durations: readonly number[];
  /** Runway refuses a body without `duration` for this model. */
  durationRequired: boolean;
  /** Takes `audio` (Veo 3.1): the adapter sends false, the price below being the silent one. */
  audio: boolean;
  creditsPerSecond: number;
}

const TWO_TO_TEN = [2, 3, 4, 5, 6, 7, 8, 9, 10] as const;

export const RUNWAY_VIDEO_MODEL_SPECS: Record<RunwayVideoModel, RunwayVideoModelSpec> = {
  'gen4.5': {
    textRatios: ['1280:720', '720:1280'],
    imageRatios: RUNWAY_GEN4_RATIOS,
    durations: TWO_TO_TEN,
    durationRequired: true,
    audio: false,
    creditsPerSecond: 12,
  },
  gen4_turbo: {
    textRatios: [],
    imageRatios: RUNWAY_GEN4_RATIOS,
    durations: TWO_TO_TEN,
    durationRequired: false,
    audio: false,
    creditsPerSecond: 5,
  },
  'veo3.1': {
    textRatios: RUNWAY_VEO_RATIOS,
    imageRatios: RUNWAY_VEO_RATIOS,
    durations: [4, 6, 8],
    durationRequired: false,
    audio: true,
    creditsPerSecond: 20,
  },
  'veo3.1_fast': {
    textRatios: RUNWAY_VEO_RATIOS,
    imageRatios: RUNWAY_VEO_RATIOS,
    durations: [4, 6, 8],
    durationRequired: false,
    audio: true,
    creditsPerSecond: 10,
  },
  veo3: {
    textRatios: RUNWAY_VEO_RATIOS,
    imageRatios: RUNWAY_VEO_RATIOS,
    durations: [8],
    durationRequired: true,
    audio: false,
    creditsPerSecond: 40,
  },
};

/** A prompt alone goes to gen4.5 (text_to_video); a start image to gen4_turbo, the cheapest (image_to_video). */
export const RUNWAY_TEXT_TO_VIDEO_DEFAULT: RunwayVideoModel = 'gen4.5';
export const RUNWAY_IMAGE_TO_VIDEO_DEFAULT: RunwayVideoModel = 'gen4_turbo';

export function isRunwayVideoModel(value: unknown): value is RunwayVideoModel {
  return (RUNWAY_VIDEO_MODELS as readonly unknown[]).includes(value);
}

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
  model: RunwayVideoModel;
  /** HTTPS URL or data URI of the first frame. */
  promptImage: string | { uri: string; position: 'first' | 'last' }[];
  promptText?: string;
  ratio: string;
  duration?: number;
  /** Veo 3.1 only. */
  audio?: boolean;
  seed?: number;
}

export interface RunwayTextToVideoRequest {
  model: RunwayVideoModel;
  promptText: string;
  ratio: string;
  duration?: number;
  /** Veo 3.1 only. */
  audio?: boolean;
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
  /** Seconds of video Runway makes (video only). */
  duration?: number;
  [key: string]: unknown;
}
