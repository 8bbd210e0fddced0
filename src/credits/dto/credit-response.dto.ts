import { ApiProperty, OmitType } from '@nestjs/swagger';
import { PageQueryDto, NextCursorProperty } from '../../common/page-query.dto';
import { CreditEntryKind } from '../entities/credit.entities';

export class CreditEntryDto {
  @ApiProperty({ description: 'Rises with every entry: the order of the ledger', example: '42' })
  id: string;
  @ApiProperty({
    enum: CreditEntryKind,
    enumName: 'CreditEntryKind',
    example: CreditEntryKind.Hold,
    description:
      'grant (added by an admin), hold (a task’s price taken at submit or retry), capture (what a completed task ' +
      'spent of its hold), release (given back: a failed or cancelled task, a cheaper cached result)',
  })
  kind: CreditEntryKind;
  @ApiProperty({ description: 'Never negative: the balance is Σ grant − Σ hold + Σ release', example: 4 })
  amount: number;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', example: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21' })
  task_id: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', example: null })
  batch_id: string | null;
  @ApiProperty({ example: 'image_generation submitted' })
  reason: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;
}

export class CreditsResponseDto {
  @ApiProperty({ description: 'Credits a submit may hold now', example: 96 })
  balance: number;
  @ApiProperty({ type: [CreditEntryDto], description: 'The ledger, newest first' })
  entries: CreditEntryDto[];
  @NextCursorProperty()
  next_cursor: string | null;
}

export class CreditBalanceDto {
  @ApiProperty({ description: 'The balance after the grant', example: 196 })
  balance: number;
}

/** The page of a ledger: the list query without an admin scope (an admin reads one user's ledger by its own route). */
export class CreditsQueryDto extends OmitType(PageQueryDto, ['scope'] as const) {}
