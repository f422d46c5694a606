import type { Request, RequestHandler } from 'express';
import type { Principal } from '../auth/principal';
import type { OperationId, Operations } from './operations.gen';

type Data<O extends OperationId> = Operations[O]['data'];
type Responses<O extends OperationId> = Operations[O]['responses'];

/** What a handler receives: the validated request parts, typed from the spec. */
export interface HandlerInput<O extends OperationId> {
  body: Data<O> extends { body?: infer B } ? B : never;
  path: Data<O> extends { path?: infer P } ? P : never;
  query: Data<O> extends { query?: infer Q } ? Q : never;
  /** Undefined only on public operations. */
  principal: Principal | undefined;
  requestId: string | undefined;
  req: Request;
}

/** A typed JSON response: one of the statuses the spec declares, with its body. */
export type JsonResult<O extends OperationId> = {
  [S in keyof Responses<O>]: { status: S; body: Responses<O>[S]; headers?: Record<string, string> };
}[keyof Responses<O>];

/** A non-JSON response (CSV export and the like). */
export interface RawResult {
  status: number;
  text: string;
  contentType: string;
  headers?: Record<string, string>;
}

export type Handler<O extends OperationId> = (input: HandlerInput<O>) => Promise<JsonResult<O> | RawResult>;

export type HandlerTable = { [O in OperationId]?: Handler<O> };

/** Adapts a typed handler to Express: errors go to the one error mapper. */
export function toExpress<O extends OperationId>(handler: Handler<O>): RequestHandler {
  return (req, res, next) => {
    const input = {
      body: req.body,
      path: req.params,
      query: req.query,
      principal: req.principal,
      requestId: res.locals['requestId'] as string | undefined,
      req,
    } as HandlerInput<O>;
    handler(input)
      .then((result) => {
        if (result.headers) res.set(result.headers);
        if ('text' in result) {
          res.status(result.status).type(result.contentType).send(result.text);
        } else if (result.status === 204) {
          res.status(204).end();
        } else {
          res.status(Number(result.status)).json(result.body);
        }
      })
      .catch(next);
  };
}
