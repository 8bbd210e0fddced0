import { Controller, Delete, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { DomainException, ErrorCode, ValidationException } from '../common/domain-exception';
import { ApiAuthenticated, ApiErrors } from '../common/openapi';
import { AppConfig } from '../config/app-config';
import { UploadResponseDto } from './dto/upload-response.dto';
import { MultipartBody } from './multipart-body';
import { UploadsService } from './uploads.service';

const UPLOAD_ID = {
  name: 'id',
  description: "The upload's id (the <id> of upload:<id>)",
  schema: { type: 'string', format: 'uuid' },
} as const;
const NOT_FOUND: [number, string] = [404, 'No such upload of yours (or it has expired)'];

@ApiTags('uploads')
@ApiAuthenticated()
@Controller('api/v1/media/uploads')
export class UploadsController {
  constructor(
    private readonly uploads: UploadsService,
    private readonly config: AppConfig,
  ) {}

  @Post()
  @HttpCode(201)
  @MultipartBody()
  @ApiOperation({
    summary: 'Upload a file to use as upload:<id> in the media fields of your tasks',
    description:
      'multipart/form-data with one file part, streamed into storage. Its type is told from its bytes. Usable by you ' +
      'until expires_at (UPLOAD_TTL).',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary', description: 'The file (one part)' } },
    },
    examples: { file: { summary: 'One file part', value: { file: '<the bytes of photo.png>' } } },
  })
  @ApiCreatedResponse({ type: UploadResponseDto, description: 'Stored: use its url in your tasks' })
  @ApiErrors(
    [400, 'The form has no file part'],
    [413, 'The file is larger than UPLOAD_MAX_BYTES; nothing is kept'],
    [415, 'Not multipart, or the bytes are no media format the platform reads'],
  )
  async createUpload(@CurrentUser() user: AuthUser, @Req() request: FastifyRequest): Promise<UploadResponseDto> {
    if (!request.isMultipart()) {
      throw new DomainException(ErrorCode.UnsupportedMediaType, 'send the file as multipart/form-data');
    }
    const part = await request.file({ limits: { fileSize: this.config.uploads.maxBytes, files: 1 } });
    if (!part) throw new ValidationException([{ field: 'file', message: 'file: the form has no file part' }]);
    return this.uploads.receive(user, { stream: part.file, filename: part.filename });
  }

  @Get(':id')
  @ApiOperation({ summary: 'An upload of yours' })
  @ApiParam(UPLOAD_ID)
  @ApiOkResponse({ type: UploadResponseDto })
  @ApiErrors(NOT_FOUND)
  getUpload(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<UploadResponseDto> {
    return this.uploads.get(user, id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an upload of yours now' })
  @ApiParam(UPLOAD_ID)
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiErrors(NOT_FOUND)
  deleteUpload(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<void> {
    return this.uploads.delete(user, id);
  }
}
