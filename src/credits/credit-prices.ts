import { IMAGE_OPERATIONS, TaskType } from '../tasks/task.enums';

/** The price of a result served from the cache (CREDITS_PRICES key), instead of its task type's. */
export const CACHE_HIT = 'cache_hit';

/** Credits each task type costs when CREDITS_PRICES does not name it (a new type must be given one here). */
export const DEFAULT_CREDIT_PRICES: Readonly<Record<TaskType | typeof CACHE_HIT, number>> = {
  [TaskType.ImageEdit]: 1,
  [TaskType.ImageGeneration]: 1,
  [TaskType.VideoGeneration]: 5,
  [TaskType.Img2Vid]: 5,
  [TaskType.Caption]: 2,
  [TaskType.AddAudio]: 2,
  [TaskType.AudioTranscription]: 2,
  [TaskType.SubtitleGeneration]: 1,
  [CACHE_HIT]: 0,
};

/** Operations a price may be set for, per task type (`image_edit.generate=2`). */
const OPERATIONS: Partial<Record<TaskType, readonly string[]>> = { [TaskType.ImageEdit]: IMAGE_OPERATIONS };

const TYPES = new Set<string>(Object.values(TaskType));

/**
 * CREDITS_PRICES read into prices: `key=credits` pairs, comma-separated, where a key is a task type, a task type and
 * one of its operations (`image_edit.generate`), or `cache_hit`; keys not named keep their default. Answers the
 * problems instead when the text is not such a list.
 */
export function parseCreditPrices(text: string | undefined): { prices: Record<string, number> } | { problem: string } {
  const prices: Record<string, number> = { ...DEFAULT_CREDIT_PRICES };
  if (!text?.trim()) return { prices };
  for (const pair of text.split(',')) {
    const match = /^\s*([a-z0-9_]+)(?:\.([a-z0-9_]+))?\s*=\s*(\d{1,9})\s*$/.exec(pair);
    if (!match) return { problem: `"${pair.trim()}" is not key=credits (a whole number)` };
    const [, type, operation, credits] = match;
    if (type === CACHE_HIT && operation === undefined) {
      prices[CACHE_HIT] = Number(credits);
      continue;
    }
    if (!TYPES.has(type)) return { problem: `"${type}" is not a task type (nor ${CACHE_HIT})` };
    if (operation !== undefined && !OPERATIONS[type as TaskType]?.includes(operation)) {
      const known = OPERATIONS[type as TaskType];
      return {
        problem: known
          ? `"${operation}" is not an operation of ${type} (${known.join(', ')})`
          : `${type} has no operations to price apart`,
      };
    }
    prices[operation === undefined ? type : `${type}.${operation}`] = Number(credits);
  }
  return { prices };
}

/** What a task of this type and input costs: its operation's price when one is set, else its type's. */
export function priceOf(
  prices: Readonly<Record<string, number>>,
  type: string,
  input: Record<string, unknown>,
): number {
  const operation = input.operation;
  if (typeof operation === 'string' && `${type}.${operation}` in prices) return prices[`${type}.${operation}`];
  return prices[type] ?? 0;
}
