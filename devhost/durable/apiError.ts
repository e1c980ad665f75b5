/** An error the HTTP API turns into a status code and an ASP.NET-style error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly summary = 'Something went wrong while processing your request',
  ) {
    super(message);
  }
}
