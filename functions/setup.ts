import { app } from '@azure/functions';

/**
 * Global set-up of the Functions app (loaded with the triggers by package.json `main`).
 *
 * HTTP streaming: request bodies reach handlers as streams instead of whole buffers, so a run's
 * upload goes to Blob Storage as it arrives, with a few MiB in memory, however large it is
 * (startRun also caps concurrent uploads, INGEST_MAX_CONCURRENT_UPLOADS). Needs Functions host 4.28+
 * (Flex Consumption has it; devhost speaks the same proxy protocol).
 */
app.setup({ enableHttpStream: true });
