import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsDefined,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  registerDecorator,
  ValidateIf,
  ValidationArguments,
  ValidationOptions,
} from 'class-validator';
import { IMAGE_OPERATIONS, ImageOperation } from '../task.enums';
import { TaskCreateBaseDto } from './task-create-base.dto';
import { BEST_MODEL, BestModelOnly, IsMediaReference } from './validators';

export const STENCIL_STYLES = ['standard', 'topographic', 'outline'] as const;
export const STENCIL_BACKGROUNDS = ['white', 'transparent'] as const;
export const IMAGE_OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;
export const ENHANCE_SCALES = [2, 4] as const;

/** The defaults of the operations' knobs, applied by every provider (a stored input may lack them). */
export const IMAGE_EDIT_DEFAULTS = {
  style: 'standard',
  thickness: 2,
  threshold: 0.5,
  detail: 0.5,
  background: 'white',
  scale: 2,
  enhanceStrength: 0.5,
  colorStrength: 1,
  outputFormat: 'png',
} as const;

/** The field is only for these operations: given with another, 400 naming it. */
function OnlyFor(operations: ImageOperation[], options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'onlyFor',
      target: object.constructor,
      propertyName,
      options: {
        message: `${propertyName} applies to operation ${operations.join(' or ')} only`,
        ...options,
      },
      validator: {
        validate: (value: unknown, args: ValidationArguments) =>
          value === undefined || operations.includes((args.object as ImageEditDto).operation),
      },
    });
}

/**
 * The field must be given for these operations, and is optional for the others (in place of IsOptional, which would
 * skip the check when it is absent).
 */
function RequiredFor(operations: ImageOperation[]): PropertyDecorator {
  return applyDecorators(
    ValidateIf((dto: ImageEditDto, value: unknown) => value !== undefined || operations.includes(dto.operation)),
    IsDefined({ message: ({ property }) => `${property} is required for operation ${operations.join(', ')}` }),
  );
}

/** `color_match` recolours towards a reference image or a palette: one of the two. */
function OneColourTarget(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'oneColourTarget',
      target: object.constructor,
      propertyName,
      options: { message: 'color_match needs reference_url or palette, not both', ...options },
      validator: {
        validate: (_value: unknown, args: ValidationArguments) => {
          const dto = args.object as ImageEditDto;
          if (dto.operation !== 'color_match') return true;
          return (dto.reference_url === undefined) !== (dto.palette === undefined);
        },
      },
    });
}

/**
 * `POST /api/v1/media/images/edit`: one operation on an image (the image app's stencil, enhance, ia-gen and
 * color-match). Media fields take http(s) URLs, `upload:<id>` references or image `data:` URLs.
 */
export class ImageEditDto extends TaskCreateBaseDto {
  @ApiProperty({ enum: IMAGE_OPERATIONS, enumName: 'ImageOperation', example: 'stencil' })
  @IsIn(IMAGE_OPERATIONS)
  @OneColourTarget()
  operation: ImageOperation;

  @ApiPropertyOptional({
    description: 'The source image: http(s) URL, upload:<id>, or data:image/…;base64 (IMAGE_INLINE_MAX_BYTES)',
    example: 'https://example.com/photo.jpg',
  })
  @RequiredFor(['stencil', 'enhance', 'color_match'])
  @IsMediaReference({ inline: true })
  image_url?: string;

  @ApiPropertyOptional({
    description: 'What to make (generate), or guidance for the other operations on providers that take one',
    example: 'a koi fish in fine-line style',
  })
  @RequiredFor(['generate'])
  @IsString()
  @Length(1, 4000)
  prompt?: string;

  @ApiPropertyOptional({
    enum: STENCIL_STYLES,
    enumName: 'StencilStyle',
    default: IMAGE_EDIT_DEFAULTS.style,
    example: IMAGE_EDIT_DEFAULTS.style,
  })
  @IsOptional()
  @IsIn(STENCIL_STYLES)
  @OnlyFor(['stencil'])
  style?: (typeof STENCIL_STYLES)[number];

  @ApiPropertyOptional({ description: 'Line thickness in pixels', minimum: 1, maximum: 10, default: 2, example: 3 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10)
  @OnlyFor(['stencil'])
  thickness?: number;

  @ApiPropertyOptional({
    description: 'Edge threshold: higher keeps fewer lines',
    minimum: 0,
    maximum: 1,
    default: 0.5,
    example: 0.5,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  @OnlyFor(['stencil'])
  threshold?: number;

  @ApiPropertyOptional({
    description: 'How much fine detail to keep',
    minimum: 0,
    maximum: 1,
    default: 0.5,
    example: 0.7,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  @OnlyFor(['stencil'])
  detail?: number;

  @ApiPropertyOptional({ enum: STENCIL_BACKGROUNDS, enumName: 'StencilBackground', default: 'white', example: 'white' })
  @IsOptional()
  @IsIn(STENCIL_BACKGROUNDS)
  @OnlyFor(['stencil'])
  background?: (typeof STENCIL_BACKGROUNDS)[number];

  @ApiPropertyOptional({ enum: ENHANCE_SCALES, enumName: 'EnhanceScale', default: 2, example: 2 })
  @IsOptional()
  @IsIn(ENHANCE_SCALES)
  @OnlyFor(['enhance'])
  scale?: (typeof ENHANCE_SCALES)[number];

  @ApiPropertyOptional({
    description: 'enhance: denoise and sharpen strength (default 0.5); color_match: how far to move (default 1)',
    minimum: 0,
    maximum: 1,
    example: 0.5,
  })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  @OnlyFor(['enhance', 'color_match'])
  strength?: number;

  @ApiPropertyOptional({
    description: 'Reference images for generate (0–4)',
    type: [String],
    maxItems: 4,
    example: ['https://example.com/ref.jpg'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(4)
  @IsMediaReference({ inline: true }, { each: true })
  @OnlyFor(['generate'])
  reference_urls?: string[];

  @ApiPropertyOptional({
    description: 'color_match: the image whose colours to take (http(s) URL or upload:<id>)',
    example: 'upload:…',
  })
  @IsOptional()
  @IsMediaReference({ inline: true })
  @OnlyFor(['color_match'])
  reference_url?: string;

  @ApiPropertyOptional({
    description: 'color_match: colours to move towards, as #rrggbb (1–16)',
    type: [String],
    example: ['#1d3557', '#e63946'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(16)
  @Matches(/^#[0-9a-fA-F]{6}$/, { each: true, message: 'palette must hold colours as #rrggbb' })
  @OnlyFor(['color_match'])
  palette?: string[];

  @ApiPropertyOptional({ enum: IMAGE_OUTPUT_FORMATS, enumName: 'ImageOutputFormat', default: 'png', example: 'png' })
  @IsOptional()
  @IsIn(IMAGE_OUTPUT_FORMATS)
  output_format?: (typeof IMAGE_OUTPUT_FORMATS)[number];

  @BestModelOnly()
  model?: typeof BEST_MODEL;
}
