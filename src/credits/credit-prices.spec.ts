import { validateEnv } from '../config/env.schema';
import { AppConfig } from '../config/app-config';
import { DEFAULT_CREDIT_PRICES, parseCreditPrices, priceOf } from './credit-prices';

describe('credit prices', () => {
  it('default every task type and cache_hit when CREDITS_PRICES is unset or empty', () => {
    expect(parseCreditPrices(undefined)).toEqual({ prices: DEFAULT_CREDIT_PRICES });
    expect(parseCreditPrices('  ')).toEqual({ prices: DEFAULT_CREDIT_PRICES });
    expect(DEFAULT_CREDIT_PRICES).toMatchObject({ video_generation: 5, caption: 2, cache_hit: 0 });
  });

  it('override the defaults pair by pair, operations apart from their type', () => {
    const parsed = parseCreditPrices('image_edit=3, image_edit.generate=7,cache_hit=1');
    expect('prices' in parsed).toBe(true);
    const prices = 'prices' in parsed ? parsed.prices : {};
    expect(prices).toMatchObject({ image_edit: 3, 'image_edit.generate': 7, cache_hit: 1, img2vid: 5 });
    expect(priceOf(prices, 'image_edit', { operation: 'generate' })).toBe(7);
    expect(priceOf(prices, 'image_edit', { operation: 'stencil' })).toBe(3);
    expect(priceOf(prices, 'caption', {})).toBe(2);
  });

  it('refuse unknown types and operations, and amounts that are not whole numbers, naming the pair', () => {
    expect(parseCreditPrices('image_gen=1')).toEqual({
      problem: expect.stringContaining('"image_gen" is not a task type'),
    });
    expect(parseCreditPrices('image_edit.paint=1')).toEqual({
      problem: expect.stringContaining('"paint" is not an operation of image_edit'),
    });
    expect(parseCreditPrices('caption.fast=1')).toEqual({ problem: 'caption has no operations to price apart' });
    expect(parseCreditPrices('caption=1.5')).toEqual({ problem: '"caption=1.5" is not key=credits (a whole number)' });
    expect(parseCreditPrices('caption=-1')).toEqual({ problem: expect.stringContaining('not key=credits') });
  });

  it('stop the boot on a bad CREDITS_PRICES, naming the variable', () => {
    expect(() => validateEnv({ CREDITS_PRICES: 'caption=two' })).toThrow(/CREDITS_PRICES must look like/);
    expect(() => validateEnv({ CREDITS_ENABLED: 'yes' })).toThrow(/CREDITS_ENABLED/);
    const config = AppConfig.fromEnv({ CREDITS_ENABLED: 'true', CREDITS_PRICES: 'caption=4' });
    expect(config.credits).toEqual({ enabled: true, prices: { ...DEFAULT_CREDIT_PRICES, caption: 4 } });
    expect(AppConfig.fromEnv({}).credits.enabled).toBe(false);
  });
});
