// The trivial HTTP function bench/http measures devhost with; the bare server answers the same bytes.
const { app } = require('@azure/functions');

app.get('hello', {
  route: 'hello',
  authLevel: 'anonymous',
  handler: () => ({ jsonBody: { hello: 'world' } }),
});
