import { Module } from '@nestjs/common';
import { CreditsController } from './credits.controller';
import { CreditsRepository } from './credits.repository';
import { CreditsService } from './credits.service';

/** The credit ledger, for the submit path and the state machine (holds, captures, releases) in every role. */
@Module({
  providers: [CreditsRepository],
  exports: [CreditsRepository],
})
export class CreditsModule {}

/** The credits endpoints, mounted by the API role only. */
@Module({
  imports: [CreditsModule],
  controllers: [CreditsController],
  providers: [CreditsService],
})
export class CreditsHttpModule {}
