import { Injectable } from '@nestjs/common';
import { NotFoundException, ValidationException } from '../common/domain-exception';
import { CreditsRepository } from './credits.repository';
import { CreditsQueryDto, CreditsResponseDto } from './dto/credit-response.dto';

/** Opaque cursor over the ledger's ids. */
function encodeCursor(id: string): string {
  return Buffer.from(`e:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): string | null {
  const match = /^e:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? match[1] : null;
}

/** Balances and ledgers as the API shows them, and grants. */
@Injectable()
export class CreditsService {
  constructor(private readonly credits: CreditsRepository) {}

  /** A user's balance and ledger page; `mustExist`: 404 when nothing was ever granted to them (an admin's lookup). */
  async ledger(
    userId: string,
    query: CreditsQueryDto,
    opts: { mustExist?: boolean } = {},
  ): Promise<CreditsResponseDto> {
    let before: string | undefined;
    if (query.cursor !== undefined) {
      const decoded = decodeCursor(query.cursor);
      if (decoded === null)
        throw new ValidationException([{ field: 'cursor', message: 'cursor is not a cursor of this list' }]);
      before = decoded;
    }
    const account = await this.credits.findAccount(userId);
    if (!account && opts.mustExist) throw new NotFoundException('credit account', userId);
    const { rows, hasMore } = await this.credits.listEntries(userId, query.limit ?? 20, before);
    return {
      balance: account?.balance ?? 0,
      entries: rows.map((e) => ({
        id: e.id,
        kind: e.kind,
        amount: e.amount,
        task_id: e.taskId,
        batch_id: e.batchId,
        reason: e.reason,
        created_at: e.createdAt.toISOString(),
      })),
      next_cursor: hasMore ? encodeCursor(rows[rows.length - 1].id) : null,
    };
  }

  async grant(userId: string, amount: number, reason: string): Promise<{ balance: number }> {
    if (userId.length > 200) {
      throw new ValidationException([{ field: 'user_id', message: 'user_id is at most 200 characters' }]);
    }
    return { balance: await this.credits.grant(userId, amount, reason) };
  }
}
