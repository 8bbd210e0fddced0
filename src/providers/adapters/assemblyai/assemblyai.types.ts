/**
 * The slice of AssemblyAI's pre-recorded speech-to-text API (v2) the adapter and its emulator speak. Shapes follow
 * AssemblyAI's own OpenAPI document (AssemblyAI/assemblyai-api-spec `openapi.json`: UploadedFile, TranscriptParams,
 * Transcript, TranscriptStatus, Error; see docs/providers.md).
 */

/** Pre-recorded speech models, best first. */
export const ASSEMBLYAI_SPEECH_MODELS = ['universal-3-pro', 'universal-2'] as const;
export type AssemblyAiSpeechModel = (typeof ASSEMBLYAI_SPEECH_MODELS)[number];

export function isAssemblyAiSpeechModel(value: unknown): value is AssemblyAiSpeechModel {
  return (ASSEMBLYAI_SPEECH_MODELS as readonly unknown[]).includes(value);
}

/** Published price per hour of audio, billed to the second; speaker labels are an add-on at their own hourly rate. */
export const ASSEMBLYAI_PRICE_PER_HOUR: Record<AssemblyAiSpeechModel, number> = {
  'universal-3-pro': 0.21,
  'universal-2': 0.15,
};
export const ASSEMBLYAI_SPEAKER_LABELS_PER_HOUR = 0.02;

/** Universal-3 Pro transcribes these; AssemblyAI routes other languages to the next model in `speech_models`. */
export const UNIVERSAL_3_PRO_LANGUAGES: readonly string[] = ['en', 'es', 'pt', 'de', 'fr', 'it'];

/** The spec's TranscriptLanguageCode values that are bare ISO-639 codes (what the platform's `language` takes). */
// prettier-ignore
export const ASSEMBLYAI_LANGUAGES: readonly string[] = [
  'en', 'es', 'fr', 'de', 'it', 'pt', 'nl', 'af', 'sq', 'am', 'ar', 'hy', 'as', 'az', 'ba', 'eu', 'be', 'bn', 'bs',
  'br', 'bg', 'my', 'ca', 'zh', 'hr', 'cs', 'da', 'et', 'fo', 'fi', 'gl', 'ka', 'el', 'gu', 'ht', 'ha', 'haw', 'he',
  'hi', 'hu', 'is', 'id', 'ja', 'jw', 'kn', 'kk', 'km', 'ko', 'lo', 'la', 'lv', 'ln', 'lt', 'lb', 'mk', 'mg', 'ms',
  'ml', 'mt', 'mi', 'mr', 'mn', 'ne', 'no', 'nn', 'oc', 'pa', 'ps', 'fa', 'pl', 'ro', 'ru', 'sa', 'sr', 'sn', 'sd',
  'si', 'sk', 'sl', 'so', 'su', 'sw', 'sv', 'tl', 'tg', 'ta', 'tt', 'te', 'th', 'bo', 'tr', 'tk', 'uk', 'ur', 'uz',
  'vi', 'cy', 'yi', 'yo',
];

/** The official SDK polls a transcript every 3 s. */
export const ASSEMBLYAI_POLL_MS = 3000;

export type AssemblyAiTranscriptStatus = 'queued' | 'processing' | 'completed' | 'error';

/** POST /v2/upload (raw bytes, application/octet-stream). */
export interface AssemblyAiUploadedFile {
  /** Reachable only by AssemblyAI's servers, and only with a key of the same project. */
  upload_url: string;
}

/** Body of POST /v2/transcript: the fields the adapter sends. */
export interface AssemblyAiTranscriptParams {
  audio_url: string;
  /** Priority order: AssemblyAI uses the first one that can transcribe the audio's language. */
  speech_models: AssemblyAiSpeechModel[];
  language_code?: string;
  language_detection?: boolean;
  speaker_labels?: boolean;
}

export interface AssemblyAiWord {
  text: string;
  /** Milliseconds from the start of the audio. */
  start: number;
  end: number;
  confidence: number;
  speaker?: string | null;
}

export interface AssemblyAiUtterance {
  text: string;
  start: number;
  end: number;
  confidence: number;
  /** "A", "B", … */
  speaker: string;
  words: AssemblyAiWord[];
}

/** GET /v2/transcript/{id} (and the answer of POST /v2/transcript and DELETE). */
export interface AssemblyAiTranscript {
  id: string;
  status: AssemblyAiTranscriptStatus;
  audio_url: string;
  text?: string | null;
  words?: AssemblyAiWord[] | null;
  utterances?: AssemblyAiUtterance[] | null;
  confidence?: number | null;
  /** Seconds, a whole number. */
  audio_duration?: number | null;
  language_code?: string;
  language_detection?: boolean | null;
  speech_models?: string[] | null;
  speech_model_used?: string;
  speaker_labels?: boolean | null;
  /** Only when status is error. */
  error?: string;
}

/** Every 4xx/5xx body. */
export interface AssemblyAiErrorBody {
  error: string;
  status?: 'error';
}

export const ASSEMBLYAI_SUBTITLE_FORMATS = ['srt', 'vtt'] as const;

/** What `start` stores on the task, so any worker can poll, price and name the result later. */
export interface AssemblyAiJob {
  id: string;
  /** The platform's response_format. */
  format: string;
  speech_models: string[];
  speaker_labels: boolean;
  /** Bytes uploaded: the duration guess should the transcript not say. */
  bytes?: number;
  [key: string]: unknown;
}
