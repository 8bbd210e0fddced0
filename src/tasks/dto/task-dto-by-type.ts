import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { FieldProblem } from '../../common/domain-exception';
import { flattenValidationErrors } from '../../common/validation';
import { TaskType } from '../task.enums';
import { ImageEditDto } from './image-edit.dto';
import { TaskCreateBaseDto } from './task-create-base.dto';
import {
  AddAudioDto,
  AudioTranscribeDto,
  CaptionDto,
  Img2VidDto,
  ImageGenerateDto,
  SubtitleGenerateDto,
  VideoGenerateDto,
} from './task-create.dto';

/** Each type's create DTO, with its own class (for TaskDtoOf). */
const DTO_CLASS_BY_TYPE = {
  [TaskType.ImageGeneration]: ImageGenerateDto,
  [TaskType.VideoGeneration]: VideoGenerateDto,
  [TaskType.AudioTranscription]: AudioTranscribeDto,
  [TaskType.SubtitleGeneration]: SubtitleGenerateDto,
  [TaskType.Img2Vid]: Img2VidDto,
  [TaskType.Caption]: CaptionDto,
  [TaskType.AddAudio]: AddAudioDto,
  [TaskType.ImageEdit]: ImageEditDto,
} satisfies Record<TaskType, new () => TaskCreateBaseDto>;

/** Each type's create DTO: what its endpoint validates (TasksController). */
export const DTO_BY_TYPE: Record<TaskType, new () => TaskCreateBaseDto> = DTO_CLASS_BY_TYPE;

/** The create DTO of task type `T`: the fields its task's input is made of (TaskInputOf). */
export type TaskDtoOf<T extends TaskType> = InstanceType<(typeof DTO_CLASS_BY_TYPE)[T]>;

/** The global ValidationPipe's options (app.factory.ts), so a body validated by hand is judged as its endpoint would. */
const VALIDATOR_OPTIONS = { whitelist: true, forbidNonWhitelisted: true };

/** Validates `value` as `cls` like the global pipe does: the instance, or the problems. */
export function validateAs<T extends object>(cls: new () => T, value: unknown): { dto: T; problems: FieldProblem[] } {
  const dto = plainToInstance(cls, value);
  return { dto, problems: flattenValidationErrors(validateSync(dto, VALIDATOR_OPTIONS)) };
}
