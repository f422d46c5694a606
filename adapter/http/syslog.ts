import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import winston from 'winston';
import { Syslog } from 'winston-syslog';
import type { LogLevel, SyslogConfig } from './config';

/*
 * An integration's optional external log target: a winston logger of its own with one winston-syslog transport,
 * sending RFC 5424 messages whose body is the (already redacted) log record as JSON. Over UDP this is lossy by
 * design; over TCP each message ends with a newline (RFC 6587 non-transparent framing, what rsyslog and syslog-ng
 * accept by default) and winston-syslog queues lines while it (re)connects.
 */

// winston's npm levels onto the syslog level names winston-syslog accepts (RFC 5424 §6.2.1 severities).
const SYSLOG_LEVEL: Record<LogLevel, string> = {
  error: 'error', warn: 'warning', info: 'info', http: 'info', verbose: 'debug', debug: 'debug', silly: 'debug',
};

export interface SyslogSender {
  send(level: LogLevel, record: Record<string, unknown>): void;
  close(): void;
}

export function createSyslogSender(cfg: SyslogConfig): SyslogSender {
  const transport = new Syslog({
    host: cfg.host,
    port: cfg.port ?? 514,
    protocol: cfg.protocol,
    type: '5424',
    facility: cfg.facility,
    app_name: (cfg.app_name ?? 'provisio').replace(/\s/g, '_').slice(0, 48) || 'provisio',
    localhost: os.hostname(),
    eol: cfg.protocol === 'tcp4' ? '\n' : undefined,
  });
  // winston-syslog's own close() waits up to 4 s for datagrams it never stops counting as in flight (lines queued
  // before its socket was bound) and then reconnects a TCP socket from its 'close' handler. Closing an integration
  // should let go at once: end the TCP stream (pending lines still go out) or close the UDP socket, once.
  transport.close = () => {
    const socket = transport.socket as (net.Socket | dgram.Socket | null);
    (transport as { socket: unknown }).socket = null;
    if (!socket) return;
    socket.removeAllListeners('close');
    if (socket instanceof net.Socket) socket.end();
    else socket.close();
  };
  const logger = winston.createLogger({
    levels: winston.config.syslog.levels,
    level: 'debug',
    format: winston.format.printf((info) => String(info.message)),
    transports: [transport],
  });
  // A syslog collector that is down must never disturb the integration's calls: its errors are dropped here.
  logger.on('error', () => undefined);
  transport.on('error', () => undefined);
  return {
    send(level, record) {
      logger.log(SYSLOG_LEVEL[level], JSON.stringify(record));
      // The transport opens its socket on the first line; a log target must not keep the process alive.
      transport.socket?.unref();
    },
    close() {
      logger.close(); // unpipes the transport, which calls the close above
    },
  };
}
