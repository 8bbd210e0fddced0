import { ApiProperty } from '@nestjs/swagger';
import { IsInt, IsString, Length, Max, Min } from 'class-validator';

export class CreditGrantDto {
  @ApiProperty({ description: 'Credits to add to the balance', minimum: 1, maximum: 1_000_000_000, example: 100 })
  @IsInt()
  @Min(1)
  @Max(1_000_000_000)
  amount: number;

  @ApiProperty({ description: 'Why (kept in the ledger)', minLength: 1, maxLength: 500, example: 'monthly plan' })
  @IsString()
  @Length(1, 500)
  reason: string;
}
