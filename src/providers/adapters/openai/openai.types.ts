/**
 * The parts of OpenAI's Images and Audio APIs the adapters and the sandbox emulator use, after the official OpenAPI
 * document (schemas CreateImageRequest, ImagesResponse, CreateTranscriptionRequest, CreateTranscriptionResponse*,
 * ErrorResponse; see /work/shared/specs/openai-images-audio.openapi.json).
 */

export type OpenAiImageModel = 'dall-e-2' | 'dall-e-3' | 'gpt-image-1';
export const OPENAI_IMAGE_MODELS: readonly OpenAiImageModel[] = ['dall-e-3', 'dall-e-2', 'gpt-image-1'];

export type OpenAiImageSize =
  '256x256' | '512x512' | '1024x1024' | '1792x1024' | '1024x1792' | '1536x1024' | '1024x1536';
export type OpenAiImageQuality = 'standard' | 'hd' | 'low' | 'medium' | 'high' | 'auto';

/** Body of POST /images/generations. */
export interface CreateImageRequest {
  prompt: string;
  model?: string;
  /** 1–10; dall-e-3 only 1. */
  n?: number;
  size?: OpenAiImageSize | 'auto';
  quality?: OpenAiImageQuality;
  /** dall-e-3 only. */
  style?: 'vivid' | 'natural';
  /** DALL·E only; GPT image models always answer base64. */
  response_format?: 'url' | 'b64_json';
  /** GPT image models only. */
  output_format?: 'png' | 'jpeg' | 'webp';
  output_compression?: number;
  background?: 'transparent' | 'opaque' | 'auto';
  moderation?: 'low' | 'auto';
  user?: string;
}

/**
 * Text fields of the multipart body of POST /images/edits (beside the `image[]` parts: up to 16 png, webp or jpg
 * images under 50 MB each for GPT image models; dall-e-2 takes one square png as `image`).
 */
export interface ImageEditFields {
  model: 'gpt-image-1';
  prompt: string;
  n?: number;
  size?: '1024x1024' | '1536x1024' | '1024x1536' | 'auto';
  quality?: 'low' | 'medium' | 'high' | 'auto';
  output_format?: 'png' | 'jpeg' | 'webp';
  background?: 'transparent' | 'opaque' | 'auto';
  /** How closely the inputs' style and features are kept (gpt-image-1; `low` by default). */
  input_fidelity?: 'low' | 'high';
}

/** One generated image: bytes (b64_json) or a URL valid for 60 minutes. */
export interface ImageData {
  b64_json?: string;
  url?: string;
  /** dall-e-3 only. */
  revised_prompt?: string;
}

export interface ImagesUsage {
  total_tokens: number;
  input_tokens: number;
  output_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
}

export interface ImagesResponse {
  created: number;
  data?: ImageData[];
  /** GPT image models echo what they made. */
  background?: 'transparent' | 'opaque';
  output_format?: 'png' | 'webp' | 'jpeg';
  size?: '1024x1024' | '1024x1536' | '1536x1024';
  quality?: 'low' | 'medium' | 'high';
  usage?: ImagesUsage;
}

/** Every OpenAI error body (all four keys always present). */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export type TranscriptionModel = 'whisper-1' | 'gpt-4o-transcribe' | 'gpt-4o-mini-transcribe';
export const TRANSCRIPTION_MODELS: readonly TranscriptionModel[] = [
  'whisper-1',
  'gpt-4o-transcribe',
  'gpt-4o-mini-transcribe',
];

export type TranscriptionFormat = 'json' | 'text' | 'srt' | 'vtt' | 'verbose_json';
export const TRANSCRIPTION_FORMATS: readonly TranscriptionFormat[] = ['json', 'text', 'srt', 'vtt', 'verbose_json'];

/** Text fields of the multipart body of POST /audio/transcriptions (beside the `file` part). */
export interface CreateTranscriptionFields {
  model: string;
  language?: string;
  prompt?: string;
  response_format?: TranscriptionFormat;
  temperature?: number;
}

/** whisper-1 bills by audio duration. */
export interface TranscriptUsageDuration {
  type: 'duration';
  seconds: number;
}

/** gpt-4o transcription models bill by tokens. */
export interface TranscriptUsageTokens {
  type: 'tokens';
  input_tokens: number;
  input_token_details?: { text_tokens?: number; audio_tokens?: number };
  output_tokens: number;
  total_tokens: number;
}

/** response_format `json`. */
export interface TranscriptionJson {
  text: string;
  usage?: TranscriptUsageDuration | TranscriptUsageTokens;
}

export interface TranscriptionSegment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
}

export interface TranscriptionWord {
  word: string;
  start: number;
  end: number;
}

/** response_format `verbose_json` (whisper-1); `language` is a full name such as "english". */
export interface TranscriptionVerboseJson {
  task?: 'transcribe';
  language: string;
  duration: number;
  text: string;
  segments?: TranscriptionSegment[];
  words?: TranscriptionWord[];
  usage?: TranscriptUsageDuration;
}

/** A message of a chat completion request (the text-only form the adapters send). */
export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string;
}

export type ChatResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null };
    };

/** Body of POST /chat/completions (schema CreateChatCompletionRequest, the fields used here). */
export interface CreateChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  response_format?: ChatResponseFormat;
  max_completion_tokens?: number;
  temperature?: number;
  user?: string;
}

/** Schema CompletionUsage: `completion_tokens` includes a reasoning model's reasoning tokens (billed as output). */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number; audio_tokens?: number };
}

export type ChatFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

/** Schema CreateChatCompletionResponse. */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string | null; refusal: string | null };
    finish_reason: ChatFinishReason;
    logprobs: null;
  }[];
  usage?: CompletionUsage;
  service_tier?: string;
}

/**
 * The subtitle translator's exchange with the model: its user message is this request as JSON, and the answer must
 * be the JSON of SubtitleTranslationAnswer (a strict json_schema response format).
 */
export interface SubtitleTranslationRequest {
  target_language: string;
  /** null: the model tells the text's language itself. */
  source_language: string | null;
  cues: { id: number; text: string }[];
}

export interface SubtitleTranslationAnswer {
  source_language: string;
  cues: { id: number; text: string }[];
}
