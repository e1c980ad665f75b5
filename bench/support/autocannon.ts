/**
 * autocannon, typed: the package ships no types, and this is the part of its API the HTTP
 * benchmarks (bench:http, bench:scoring) use.
 */
export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

export interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const autocannon = require('autocannon') as (options: AutocannonOptions) => Promise<AutocannonResult>;
