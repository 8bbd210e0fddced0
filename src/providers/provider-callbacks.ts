import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config';

/** Where providers that offer a completion webhook (RunPod) tell the platform a job ended. */
export const PROVIDER_CALLBACK_PATH = 'api/v1/providers/:provider/callbacks/:taskId';

function signature(config: AppConfig, provider: string, taskId: string): string {
  return createHmac('sha256', config.jwtSecret).update(`provider-callback:${provider}:${taskId}`).digest('base64url');
}

/**
 * The URL a provider calls when the job of `taskId` ends, or undefined without PUBLIC_URL. It carries a signature of
 * its own (providers such as RunPod sign nothing), and the call only makes the platform look at the job sooner: what
 * the job became is read from the provider's API as usual, never taken from the call's body.
 */
export function providerCallbackUrl(config: AppConfig, provider: string, taskId: string): string | undefined {
  const base = config.publicUrl;
  if (!base) return undefined;
  const path = PROVIDER_CALLBACK_PATH.replace(':provider', provider).replace(':taskId', taskId);
  return `${base}/${path}?sig=${signature(config, provider, taskId)}`;
}

export function isValidCallback(config: AppConfig, provider: string, taskId: string, sig: unknown): boolean {
  if (typeof sig !== 'string') return false;
  const expected = Buffer.from(signature(config, provider, taskId));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
