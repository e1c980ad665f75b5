// No-op activities in a sequential chain and a fan-out/fan-in; the activity returns when it started.
const { app } = require('@azure/functions');
const df = require('durable-functions');

df.app.activity('noop', { handler: () => Date.now() });

df.app.orchestration('chain', function* (context) {
  const n = context.df.getInput();
  const starts = [];
  for (let i = 0; i < n; i++) starts.push(yield context.df.callActivity('noop', i));
  return starts;
});

df.app.orchestration('fanOut', function* (context) {
  const n = context.df.getInput();
  const tasks = [];
  for (let i = 0; i < n; i++) tasks.push(context.df.callActivity('noop', i));
  const starts = yield context.df.Task.all(tasks);
  return starts.length;
});

app.http('start', {
  route: 'start/{name}',
  methods: ['POST'],
  extraInputs: [df.input.durableClient()],
  handler: async (request, context) => {
    const client = df.getClient(context);
    const id = await client.startNew(request.params.name, { input: Number(request.query.get('n')) });
    return client.createCheckStatusResponse(request, id);
  },
});

// A counter entity for the entity benchmark: add(n) and nothing else.
df.app.entity('counter', (context) => {
  context.df.setState(context.df.getState(() => 0) + (context.df.getInput() ?? 0));
});

// Critical sections for the entity benchmark: `n` times, lock the two shared counters, add 1 to each
// with callEntity, release. Every instance contends for the same two locks.
df.app.orchestration('sections', function* (context) {
  const n = context.df.getInput();
  const ids = [new df.EntityId('counter', 'lock-a'), new df.EntityId('counter', 'lock-b')];
  for (let i = 0; i < n; i++) {
    const lock = yield context.df.lock(ids);
    for (const id of ids) yield context.df.callEntity(id, 'add', 1);
    lock.release();
  }
  return n;
});
