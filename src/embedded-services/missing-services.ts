import { displayAddress } from './probes';
import type { ServiceDecision, ServiceName } from './service-plan';

/** Something needed that is not there: what is wrong (a sentence), then what to run about it. */
export interface Shortfall {
  problem: string;
  remedy: string;
}

interface ServiceFacts {
  title: string;
  defaultPort: number;
  install: string;
}

const SERVICES: Record<ServiceName, ServiceFacts> = {
  postgres: {
    title: 'PostgreSQL',
    defaultPort: 5432,
    install:
      '`sudo apt-get install -y postgresql` (Debian/Ubuntu), `brew install postgresql@18 && brew services start ' +
      'postgresql@18` (macOS) or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:18`',
  },
  redis: {
    title: 'Redis',
    defaultPort: 6379,
    install:
      '`sudo apt-get install -y redis-server` (Debian/Ubuntu), `brew install redis && brew services start redis` ' +
      '(macOS) or `docker run -d -p 6379:6379 redis:7`',
  },
};

export function serviceTitle(name: ServiceName): string {
  return SERVICES[name].title;
}

/** The shortfall of one service that could not be used or started. */
export function serviceShortfall(decision: Extract<ServiceDecision, { action: 'missing' }>): Shortfall {
  const { need, probe, cannotStart } = decision;
  const facts = SERVICES[need.name];
  const where = `${displayAddress(need.url, facts.defaultPort)} (${need.variable})`;
  let problem: string;
  if (!probe) problem = `${facts.title} cannot be started here (EMBEDDED_SERVICES=always): ${cannotStart}`;
  else if (probe.state === 'rejects') problem = `${facts.title} at ${where} refuses the connection: ${probe.reason}`;
  else if (cannotStart)
    problem = `${facts.title} does not answer at ${where} and cannot be started here: ${cannotStart}`;
  else problem = `${facts.title} does not answer at ${where}`;
  return {
    problem,
    remedy: `install and start ${facts.title} with ${facts.install}, or set ${need.variable} to yours`,
  };
}

/** A service that failed while being started (the binaries are there but the server did not come up). */
export function startFailure(name: ServiceName, variable: string, reason: string): Shortfall {
  const facts = SERVICES[name];
  return {
    problem: `${facts.title} could not be started here: ${reason}`,
    remedy: `install and start ${facts.title} with ${facts.install}, or set ${variable} to yours`,
  };
}

/** One paragraph naming everything missing at once, each with the command that brings it. */
export function shortfallParagraph(subject: string, shortfalls: Shortfall[]): string {
  const parts = shortfalls.map((s) => `${s.problem}; ${s.remedy}.`);
  return `${subject} cannot start. ${parts.join(' ')}`;
}

/** Thrown when boot cannot have what it needs; its message is the paragraph, meant for people, without a stack. */
export class ServicesMissingError extends Error {
  constructor(readonly paragraph: string) {
    super(paragraph);
    this.name = 'ServicesMissingError';
  }
}
