import { ApiProperty, OmitType } from '@nestjs/swagger';
import { PageQueryDto } from '../../common/page-query.dto';
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

/** The page of a ledger: the list query without an admin scope (an admin reads one user's ledger by its own route). */
export class CreditsQueryDto extends OmitType(PageQueryDto, ['scope'] as const) {}
