/**
 * The parts of Google's Gemini API (`v1beta`, `models.generateContent`) the adapter and its emulator use: a request
 * of text and inline image parts asking for image output, and the answer's candidates, safety verdicts and usage.
 * Field names are the REST API's camelCase JSON (docs/providers.md, "Gemini").
 */

/** A part of a content: text, or an image inline as base64. */
export type GeminiPart = { text: string; thought?: boolean } | { inlineData: { mimeType: string; data: string } };

export interface GeminiContent {
  role?: 'user' | 'model';
  parts: GeminiPart[];
}

export type GeminiModality = 'TEXT' | 'IMAGE';

/** Body of POST /v1beta/models/{model}:generateContent (the fields used here). */
export interface GenerateContentRequest {
  contents: GeminiContent[];
  generationConfig?: {
    /** An image model answers images only when IMAGE is asked for. */
    responseModalities?: GeminiModality[];
    candidateCount?: number;
    imageConfig?: { aspectRatio?: string };
  };
}

/** Why a candidate stopped; the safety ones leave it without an image. */
export type GeminiFinishReason =
  | 'FINISH_REASON_UNSPECIFIED'
  | 'STOP'
  | 'MAX_TOKENS'
  | 'SAFETY'
  | 'RECITATION'
  | 'LANGUAGE'
  | 'OTHER'
  | 'BLOCKLIST'
  | 'PROHIBITED_CONTENT'
  | 'SPII'
  | 'MALFORMED_FUNCTION_CALL'
  | 'IMAGE_SAFETY'
  | 'IMAGE_PROHIBITED_CONTENT'
  | 'IMAGE_RECITATION'
  | 'IMAGE_OTHER'
  | 'NO_IMAGE';

/** Finish reasons that mean the content was refused. */
export const GEMINI_SAFETY_REASONS: readonly string[] = [
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
];

export type GeminiBlockReason =
  'BLOCK_REASON_UNSPECIFIED' | 'SAFETY' | 'OTHER' | 'BLOCKLIST' | 'PROHIBITED_CONTENT' | 'IMAGE_SAFETY';

export interface GeminiCandidate {
  content?: GeminiContent;
  finishReason?: GeminiFinishReason;
  index?: number;
  safetyRatings?: { category: string; probability: string; blocked?: boolean }[];
}

export interface GeminiUsage {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  totalTokenCount?: number;
}

/** 200 answer. A blocked prompt has `promptFeedback.blockReason` and no candidates. */
export interface GenerateContentResponse {
  candidates?: GeminiCandidate[];
  promptFeedback?: { blockReason?: GeminiBlockReason; safetyRatings?: unknown[] };
  usageMetadata?: GeminiUsage;
  modelVersion?: string;
  responseId?: string;
}

/** Every non-2xx answer (google.rpc.Status). */
export interface GeminiErrorBody {
  error: {
    code: number;
    message: string;
    /** INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE… */
    status: string;
    details?: { '@type': string; reason?: string; retryDelay?: string; [key: string]: unknown }[];
  };
}

/**
 * Published prices (ai.google.dev/gemini-api/docs/pricing, gemini-2.5-flash-image): output images $30 per million
 * tokens, 1290 tokens for an image up to 1024×1024 ($0.039); input $0.30 per million tokens.
 */
export const GEMINI_IMAGE_PRICE = 0.039;
export const GEMINI_INPUT_PRICE_PER_TOKEN = 0.3 / 1_000_000;
/** Tokens an input image counts (258 for one up to 384 px a side; larger ones are tiled, so this is a floor). */
export const GEMINI_TOKENS_PER_INPUT_IMAGE = 258;

/** What the API takes inline in one request (the whole request, base64 included). */
export const GEMINI_INLINE_REQUEST_MAX_BYTES = 20 * 1024 * 1024;
