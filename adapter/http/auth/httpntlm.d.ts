// Types for the NTLM message functions of httpntlm (the package ships none).
declare module 'httpntlm/ntlm' {
  export interface Type2Message {
    signature: Buffer;
    type: number;
    negotiateFlags: number;
    serverChallenge: Buffer;
    targetName: Buffer;
    targetInfo?: Buffer;
  }
  export interface NtlmIdentity {
    username?: string;
    password?: string;
    domain?: string;
    workstation?: string;
  }
  /** `NTLM <base64 NEGOTIATE_MESSAGE>` */
  export function createType1Message(options: NtlmIdentity): string;
  /** Parses `NTLM <base64 CHALLENGE_MESSAGE>`; calls `callback` with an error and returns null when it is not one. */
  export function parseType2Message(raw: string, callback: (err: Error) => void): Type2Message | null;
  /** `NTLM <base64 AUTHENTICATE_MESSAGE>` (NTLMv2 when the challenge carries target info). */
  export function createType3Message(msg2: Type2Message, options: NtlmIdentity): string;
  /** NTOWFv1: MD4 of the UTF-16LE password. */
  export function create_NT_hashed_password(password: string): Buffer;
}
