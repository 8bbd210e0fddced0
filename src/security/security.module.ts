import { Global, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { UrlGuard } from './url-guard';

@Global()
@Module({
  providers: [
    { provide: UrlGuard, inject: [AppConfig], useFactory: (c: AppConfig) => new UrlGuard(c.allowPrivateAddresses) },
  ],
  exports: [UrlGuard],
})
export class SecurityModule implements OnApplicationShutdown {
  constructor(private readonly guard: UrlGuard) {}

  async onApplicationShutdown(): Promise<void> {
    await this.guard.close();
  }
}
