// The database: one interface over PostgreSQL and PGlite, migrations, and the append-only audit writer.
export { AUDIT_COLUMNS, auditValues, createPgliteDatabase, createPostgresDatabase, listMigrations, migrate, openDatabase, pendingMigrations, PgErrorCode, sqlState, stripSecrets, writeAudit } from './db';
export type { Actor, AuditEntry, Database, DatabaseKind, Listener, Queryable, QueryResult, Transaction } from './db';
// Only one process opens a DATA_DIR's embedded database; the others are refused or work through its socket.
export { embeddedDatabaseHolder, embeddedSocketPath, EmbeddedDatabaseLockedError } from './db';
export type { DataDirHolder, OpenDatabaseOptions } from './db';
// The job queue (pg-boss on the same database).
export { createJobQueue, QueueName } from './queue';
export type { Job, JobQueue, JobQueueOptions, JobRecord, JobState, QueueOptions, QueueSchedule, SendOptions, WorkHandler, WorkOptions } from './queue';
// Observability: Prometheus metrics and OpenTelemetry traces (adapter/telemetry).
export {
  activeSpanIds,
  countLeaverEvent,
  countScimRequest,
  createMetricsExposition,
  currentTraceparent,
  deferSpan,
  endDeferredSpan,
  endSpan,
  failSpan,
  flushTraces,
  inSpan,
  observeHttpRequest,
  observeIntegrationCall,
  observeRun,
  observeStep,
  setMetricsRecording,
  SpanKind,
  startClientSpan,
  startServerSpan,
  startTracing,
  stopTracing,
  tracingEnabled,
  tracingOptionsFromEnv,
  withOpenSpan,
} from './telemetry';
export type { DeferredSpan, MetricsExposition, OpenSpan, TracingOptions } from './telemetry';
// Logging and paths.
export { createLogger, withLogContext, currentLogContext, redact } from './log';
export type { Logger, LogContext } from './log';
export { projectRoot, projectPath } from './paths';
// Outbound HTTP: the integration transport (auth schemes, TLS, proxy, timeout, envelope, logging).
export {
  AUTH_TYPES,
  buildEnvelope,
  CallNotMadeCode,
  CallNotMadeError,
  checkMtlsMaterial,
  createEndpointClient,
  createIntegrationClient,
  DEFAULT_TIMEOUT_MS,
  explainNetworkError,
  integrationConfigSchema,
  isEnvelope,
  LOG_LEVELS,
  missingInformation,
  NOT_MADE,
  NOT_REACHED,
  pathOf,
  pemFromDataUrl,
  pemToDataUrl,
  REDACTED,
  redactConfig,
  SECRET_CONFIG_PATHS,
  TokenRequestError,
  validateIntegrationConfig,
} from './http';
export type {
  AuthenticationConfig,
  AuthType,
  ConfigIssue,
  ConfigValidation,
  DynamicApiKeyConfig,
  EndpointClientOptions,
  EndpointConnection,
  IntegrationCallRequest,
  IntegrationCallResult,
  IntegrationClient,
  IntegrationClientDeps,
  IntegrationConfig,
  IntegrationConfigInput,
  IntegrationEnvelope,
  LogLevel,
  MtlsConfig,
  OAuthConfig,
  OAuthTokens,
  ParseError,
  QueryValue,
  RawResponseOptions,
  ResponseHeaders,
  ServerConfig,
  SyslogConfig,
} from './http';
// The LDAP / Active Directory directory.
export {
  CONSUMER_ATTRIBUTES,
  createDirectory,
  DEFAULT_CONSUMER_ATTRIBUTES,
  DirectoryError,
  DirectoryErrorCode,
  escapeFilterValue,
  isDnWithin,
  normalizeDn,
  parseDn,
  PROTECTED_ATTRIBUTES,
  resolveDirectorySettings,
  toDirectoryError,
} from './directory';
export type {
  AttributeChange,
  AttributeValues,
  ConsumerAttribute,
  Directory,
  DirectoryAuthType,
  DirectoryDeps,
  DirectoryErrorDetails,
  DirectoryGroup,
  DirectorySecurity,
  DirectorySettings,
  DirectoryUser,
  Eligibility,
  EnabledChange,
  GroupKey,
  GroupKeyKind,
  Membership,
  MembershipChange,
  ResolvedDirectorySettings,
  UserKey,
  UserKeyKind,
} from './directory';
// Entra ID as a directory, over Microsoft Graph.
export { ClientCredentialsProvider, createGraphDirectory, DEFAULT_GRAPH_CONSUMER_ATTRIBUTES, graphToDirectoryError } from './directory/graph';
export type { GraphDirectory, GraphDirectorySettings } from './directory/graph';
// Kerberos tickets (keytab or password, MIT kinit into a DIR ccache collection) and GSS-SPNEGO/krb5 client contexts.
export { createKerberosCredentials, KerberosError, KerberosErrorCode, loadKerberosAddon, toKerberosError } from './kerberos';
export type { GssClientContext, GssClientOptions, GssMechanism, KerberosConfig, KerberosCredentials, KerberosSecret, TicketInfo } from './kerberos';
// WS-Management (WinRM) Invoke of the ConfigMgr client's WMI methods, over an integration's client.
export { executeProgram, invokeWsmanMethod, triggerClientSchedule, MACHINE_POLICY_RETRIEVAL, WsmanError, WsmanErrorCode } from './wsman';
export type { WsmanFault, WsmanResult } from './wsman';
// Outbound mail over SMTP (nodemailer).
export {
  checkAddress,
  checkAddressList,
  checkHeaderText,
  createMailer,
  hasControlCharacter,
  MailError,
  MailErrorCode,
  resolveSmtpSettings,
  SMTP_DEFAULT_PORTS,
  toMailError,
  transportOptions,
} from './mail';
export type { MailAddress, Mailer, MailerOptions, MailErrorDetails, MailMessage, MailSent, MailStage, SmtpSettings, SmtpTlsMode } from './mail';
// Microsoft Teams incoming webhooks (Adaptive Cards over the integration transport).
export { DEFAULT_TEAMS_TIMEOUT_MS, describeTeamsWebhook, postTeamsMessage, TEAMS_WEBHOOK_URL_MAX_LENGTH, TeamsError, TeamsErrorCode, teamsWebhookUrlProblem } from './teams';
export type { TeamsPosted, TeamsPostOptions } from './teams';
// The AD gateway's generated API types (request and response of each operation); types only, so importing the
// room does not load the generated clients.
export type { adGateway } from './clients';
// Runbook steps' typed calls: the generated SDK function of a model's operation, by document digest. This loads
// the SDK modules (not their types), a few kilobytes each.
export { modelDocumentDigest, typedOperation } from './clients';
export type { TypedOperation, TypedOperationInput } from './clients';
// JSON helpers shared by every room: the plain-object test, RFC 6901 pointers, canonical JSON.
export { canonicalJson, escapePointerToken, getByPointer, hasPointer, isRecord, parsePointer, resolvePointer, toPointer, unescapePointerToken } from './json';
export type { PointerResult } from './json';
export { onFirstUse } from './lazy';
export {
  CodedError, GenericErrorCode, isCodedError,
  badRequest, unauthenticated, forbidden, notFound, conflict, invalidField, validationFailed, integrationCallFailed,
} from './errors';
export type { FieldError, CodedErrorData } from './errors';
// Secrets at rest: the master key, sealed values (AES-256-GCM under data keys wrapped by the master key), their places.
export {
  SecretsKeyError,
  SealedSecretError,
  configureSecrets,
  createActiveDataKey,
  deleteDataKeys,
  ensureSecretsKey,
  isSealed,
  listDataKeys,
  loadMasterKey,
  decodeMasterKey,
  masterKeyFile,
  masterKeyId,
  newMasterKeyText,
  openSecret,
  pendingKeyFile,
  readMasterKeyFile,
  replaceFile,
  rewrapDataKeys,
  sealSecret,
  sealedKeyId,
  secretPlace,
  writeSecretFile,
} from './secrets';
export type { LoadedMasterKey, MasterKeySource } from './secrets';
// External secret backends: reference grammar, the backends, read-time resolution with its TTL cache.
export {
  SECRET_SCHEMES,
  SecretBackendError,
  clearSecretCache,
  configureSecretResolver,
  createSecretBackends,
  formatSecretReference,
  looksLikeSecretReference,
  parseSecretReference,
  resolveSecretReference,
  resolveSecretValue,
  resolveSecretValues,
} from './secrets';
export type { ParsedReference, SecretBackend, SecretBackendErrorCode, SecretBackendSettings, SecretReference, SecretScheme } from './secrets';
