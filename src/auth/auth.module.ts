import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { createSecretKey } from 'node:crypto';
import { ApiKeysModule } from '../api-keys/api-keys.module';
import { AppConfig } from '../config/app-config';
import { JwtAuthGuard } from './jwt-auth.guard';
import { issuedFor } from './token';

@Global()
@Module({
  imports: [
    ApiKeysModule,
    JwtModule.registerAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        // A KeyObject, not the string: given a string, jsonwebtoken first tries it as a PEM public key on every
        // verify, and that failed parse costs more than the whole rest of a request.
        secret: createSecretKey(Buffer.from(config.jwtSecret, 'utf8')) as unknown as string,
        // With JWT_ISSUER / JWT_AUDIENCE set, the platform's own tokens carry them and every token must match them.
        signOptions: { algorithm: 'HS256', ...issuedFor({ issuer: config.jwtIssuer, audience: config.jwtAudience }) },
        verifyOptions: {
          algorithms: ['HS256'],
          ...issuedFor({ issuer: config.jwtIssuer, audience: config.jwtAudience }),
        },
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: JwtAuthGuard }],
  exports: [JwtModule],
})
export class AuthModule {}
