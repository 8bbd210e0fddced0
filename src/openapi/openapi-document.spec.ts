import { toOpenApi31 } from './openapi-document';

describe('toOpenApi31', () => {
  it('turns nullable into a null type, around references too, and boolean exclusive bounds into numbers', () => {
    expect(
      toOpenApi31({
        a: { type: 'string', nullable: true, enum: ['x'] },
        b: { nullable: true, type: 'object', allOf: [{ $ref: '#/components/schemas/B' }], description: 'd' },
        c: { type: 'number', exclusiveMinimum: true, minimum: 0, maximum: 1 },
        d: { type: 'integer', nullable: false },
      }),
    ).toEqual({
      a: { type: ['string', 'null'], enum: ['x', null] },
      b: { description: 'd', anyOf: [{ $ref: '#/components/schemas/B' }, { type: 'null' }] },
      c: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      d: { type: 'integer' },
    });
  });
});
