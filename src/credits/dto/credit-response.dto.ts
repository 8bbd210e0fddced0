import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { CreditEntryKind } from '../entities/credit.entities';

export class CreditEntryDto {
  @ApiProperty({ description: 'Rises with every entry: the order of the ledger', example: '42' })
  id: string;
  @ApiProperty({
    enum: CreditEntryKind,
    description:
      'grant (added by an admin), hold (a task’s price taken at submit or retry), capture (what a completed task ' +
      'spent of its hold), release (given back: a failed or cancelled task, a cheaper cached result)',
  })
  kind: CreditEntryKind;
  @ApiProperty({ description: 'Never negative: the balance is Σ grant − Σ hold + Σ release' })
  amount: number;
  @ApiProperty({ nullable: true, format: 'uuid' })
  task_id: string | null;
  @ApiProperty({ nullable: true, format: 'uuid' })
  batch_id: string | null;
  @ApiProperty()
  reason: string;
  @ApiProperty({ format: 'date-time' })
  created_at: string;
}

export class CreditsResponseDto {
  @ApiProperty({ description: 'Credits a submit may hold now' })
  balance: number;
  @ApiProperty({ type: [CreditEntryDto], description: 'The ledger, newest first' })
  entries: CreditEntryDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last' })
  next_cursor: string | null;
}

export class CreditBalanceDto {
  @ApiProperty()
  balance: number;
}

export class CreditsQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number = 20;

  @ApiPropertyOptional({ description: 'Opaque: the next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cursor?: string;
}
