import { IMAGE_EDIT_DEFAULTS } from '../tasks/dto/image-edit.dto';
import { TaskInputOf } from '../tasks/task-input';
import { TaskType } from '../tasks/task.enums';

export type ImageEditInput = TaskInputOf<TaskType.ImageEdit>;

/** The media fields of an operation, in the order a prompt-driven model is given them. */
export function imageRefsOf(input: ImageEditInput): { field: string; ref: string }[] {
  const refs: { field: string; ref: string }[] = [];
  if (input.image_url) refs.push({ field: 'image_url', ref: input.image_url });
  if (input.operation === 'generate') {
    (input.reference_urls ?? []).forEach((ref, i) => refs.push({ field: `reference_urls[${i}]`, ref }));
  }
  if (input.operation === 'color_match' && input.reference_url) {
    refs.push({ field: 'reference_url', ref: input.reference_url });
  }
  return refs;
}

const STENCIL_STYLES: Record<string, string> = {
  standard: 'a clean line-art stencil: the outer contours and the main inner lines',
  topographic:
    'a topographic stencil: contour lines that follow the tones of the image, like the lines of a relief map',
  outline: 'an outline stencil: the outer silhouette and the largest shapes only',
};

const percent = (value: number) => `${Math.round(value * 100)}%`;

/**
 * The instruction a prompt-driven image model (Gemini, OpenAI image edits) is given for an operation and its knobs,
 * the user's own `prompt` added as guidance. The images go with it in the order of `imageRefsOf`.
 */
export function imageInstruction(input: ImageEditInput): string {
  const guidance = input.prompt ? ` Additional guidance: ${input.prompt}` : '';
  switch (input.operation) {
    case 'generate': {
      const refs = input.reference_urls?.length ?? 0;
      if (refs === 0) return input.prompt ?? '';
      return (
        `${input.prompt ?? ''}\n\nUse the ${refs === 1 ? 'attached image' : `${refs} attached images`} as ` +
        'reference for the subject, style and composition.'
      );
    }
    case 'stencil': {
      const style = input.style ?? IMAGE_EDIT_DEFAULTS.style;
      const thickness = input.thickness ?? IMAGE_EDIT_DEFAULTS.thickness;
      const detail = input.detail ?? IMAGE_EDIT_DEFAULTS.detail;
      const threshold = input.threshold ?? IMAGE_EDIT_DEFAULTS.threshold;
      return (
        `Turn this image into ${STENCIL_STYLES[style]}, for transferring onto skin. Pure black lines about ` +
        `${thickness} px thick on a plain white background; no shading, no grey, no colour, no text. Keep ` +
        `${detail >= 0.67 ? 'the fine detail' : detail >= 0.34 ? 'a moderate amount of detail' : 'only the essential shapes'}` +
        ` and ${threshold >= 0.67 ? 'only the strongest edges' : threshold >= 0.34 ? 'the clear edges' : 'even the faint edges'}. ` +
        'Keep the composition and proportions of the original exactly.' +
        guidance
      );
    }
    case 'enhance': {
      const strength = input.strength ?? IMAGE_EDIT_DEFAULTS.enhanceStrength;
      return (
        'Restore and enhance this photo: remove noise, blur and compression artefacts and sharpen the detail ' +
        `(strength ${percent(strength)}). Keep the content, composition and colours exactly as they are; add and ` +
        'remove nothing.' +
        guidance
      );
    }
    case 'color_match': {
      const strength = input.strength ?? IMAGE_EDIT_DEFAULTS.colorStrength;
      const amount = strength >= 1 ? 'fully' : `${percent(strength)} of the way`;
      const target = input.palette
        ? `towards this palette of colours: ${input.palette.join(', ')}`
        : 'so its palette, white balance and mood match the second image';
      return (
        `Recolour the first image ${target}, ${amount}. Change only the colours: keep every shape, object, ` +
        'texture and detail of the first image where it is.' +
        guidance
      );
    }
  }
}
