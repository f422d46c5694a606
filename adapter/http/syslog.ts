import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import type { LogLevel, SyslogConfig } from './config';

/*
 * A small RFC 5424 syslog sender for an integration's optional external log target. winston-syslog is not among our
 * dependencies, and what an integration needs is only this: one line per log record, UDP or TCP, no buffering
 * guarantees beyond the socket's (syslog over UDP is lossy by design).
 */

export const SYSLOG_FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

// winston's npm levels onto syslog severities (RFC 5424 §6.2.1).
const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, http: 6, verbose: 7, debug: 7, silly: 7 };

export interface SyslogSender {
  send(level: LogLevel, record: Record<string, unknown>): void;
  close(): void;
}

/** Formats one RFC 5424 message; the record (already redacted) is the JSON message body. */
export function formatSyslog(cfg: Pick<SyslogConfig, 'facility' | 'app_name'>, level: LogLevel, record: Record<string, unknown>, now = new Date()): string {
  const facility = SYSLOG_FACILITIES[cfg.facility as SyslogFacility] ?? SYSLOG_FACILITIES.local0;
  const pri = facility * 8 + SEVERITY[level];
  const app = (cfg.app_name ?? 'provisio').replace(/\s/g, '_').slice(0, 48) || '-';
  const host = os.hostname().replace(/\s/g, '_').slice(0, 255) || '-';
  return `<${pri}>1 ${now.toISOString()} ${host} ${app} ${process.pid} - - ${JSON.stringify(record)}`;
}

export function createSyslogSender(cfg: SyslogConfig): SyslogSender {
  const port = cfg.port ?? 514;
  if (cfg.protocol === 'udp4') {
    let socket: dgram.Socket | undefined;
    return {
      send(level, record) {
        if (!socket) {
          socket = dgram.createSocket('udp4');
          socket.on('error', () => undefined);
          socket.unref();
        }
        socket.send(formatSyslog(cfg, level, record), port, cfg.host);
      },
      close() {
        socket?.close();
        socket = undefined;
      },
    };
  }
  // TCP with octet-counting framing (RFC 6587 §3.4.1); reconnects on the next line after an error.
  let socket: net.Socket | undefined;
  return {
    send(level, record) {
      if (!socket || socket.destroyed) {
        socket = net.connect({ host: cfg.host, port });
        socket.on('error', () => socket?.destroy());
        socket.unref();
      }
      const msg = formatSyslog(cfg, level, record);
      socket.write(`${Buffer.byteLength(msg)} ${msg}`);
    },
    close() {
      socket?.end();
      socket = undefined;
    },
  };
}
