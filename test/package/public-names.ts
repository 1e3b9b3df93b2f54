/**
 * The package's public names, entry point by entry point, sorted. A name
 * added to or removed from an entry point fails the packed-package test
 * until it is added or removed here too, so every change of the public
 * surface shows up in review as a change of this file.
 *
 * PUBLIC_NAMES: the values, what `Object.keys(await import(entry))` gives
 * (and what the declarations export as values).
 */
// prettier-ignore
export const PUBLIC_NAMES: Readonly<Record<string, readonly string[]>> = {
  sockeye: [
    'CloseCode', 'CloseEvent', 'Connection', 'ConnectionError', 'ConnectionState',
    'HandshakeError', 'Opcode', 'ProtocolError', 'ProxyError', 'ReconnectingWebSocket',
    'ReconnectingWebSocketError', 'UpgradeRejection', 'UsageError', 'WebSocket',
    'WebSocketServer', 'backoffDelay', 'connect', 'reject', 'routeParams',
  ],
  'sockeye/protocol': [
    'CloseCode', 'DEFAULT_HEAD_LIMITS', 'DEFAULT_MAX_MESSAGE_SIZE', 'FrameReader', 'MAX_CLOSE_REASON_BYTES',
    'Opcode', 'Protocol', 'ProtocolError', 'ProtocolState', 'RequestHeadParser', 'ResponseHeadParser',
    'Role', 'UsageError', 'Utf8Validator', 'WEBSOCKET_GUID', 'acceptServerResponse', 'applyMask',
    'base64Decode', 'base64Encode', 'buildAcceptResponse', 'buildClientOffer', 'buildRejection',
    'buildUpgradeRequest', 'computeAcceptKey', 'encodeClosePayload', 'encodeFrame', 'formatExtensions',
    'frameHeaderSize', 'generateClientKey', 'headersFromRaw', 'isControl', 'isToken', 'isValidClientKey',
    'isValidUtf8', 'isValidWireCloseCode', 'negotiateServer', 'parseExtensions', 'parseSubprotocols',
    'prepareFrame', 'randomMaskKey', 'selectSubprotocol', 'sha1', 'validateUpgradeRequest',
    'validateUpgradeResponse', 'writeFrameHeader',
  ],
  'sockeye/pubsub': [
    'BrokerError', 'MemoryBroker', 'PubSub', 'RedisBroker', 'TopicCursor',
  ],
  'sockeye/web/reconnecting-websocket': [
    'ReconnectingWebSocket', 'ReconnectingWebSocketError', 'backoffDelay',
  ],
  'sockeye/web/page-socket': [
    'STATE_LABELS', 'pageSocket', 'parseEnvelope', 'sendEnvelope', 'showState', 'socketUrl',
  ],
};

/** The type-only names (interfaces, type aliases) the declarations of each entry point export. */
// prettier-ignore
export const PUBLIC_TYPES: Readonly<Record<string, readonly string[]>> = {
  sockeye: [
    'BackoffOptions', 'BinaryType', 'BlobLike', 'BroadcastOptions', 'ClientDeflateOptions', 'CloseEventInit',
    'CloseInfo', 'ConnectOptions', 'ConnectionErrorCode', 'ConnectionEvents', 'FrameInfo',
    'HandshakeErrorCode', 'HeartbeatOptions', 'HookFailure', 'HookName', 'HookResult', 'MessageData',
    'MessageIteratorOptions', 'OutgoingData', 'ProtocolErrorCode', 'RateLimitKind', 'RateLimitOptions',
    'RateLimited', 'ReceivedMessage', 'ReconnectState', 'ReconnectingErrorCode',
    'ReconnectingWebSocketEventMap', 'ReconnectingWebSocketOptions', 'Route', 'RouteParams', 'RouteTraffic', 'SendData',
    'SendOptions', 'SendStatus', 'ServerCounters', 'ServerDeflateOptions', 'ServerLogEntry', 'ServerOptions',
    'ShutdownOptions', 'SocketEvent', 'Timers', 'TopicHub', 'TrafficCounts', 'UpgradeRequest', 'UsageErrorCode',
    'WebSocketConstructor', 'WebSocketEventHandler',
    'WebSocketEventMap', 'WebSocketLike', 'WebSocketOptions', 'WireFrame',
  ],
  'sockeye/protocol': [
    'AcceptResponseOptions', 'CompressionCodec', 'DeflateOptions', 'DeflateParams',
    'DeflateResponseErrorCode', 'DeflateResponseResult', 'ExtensionOffer', 'FrameBits', 'FrameReaderOptions',
    'FrameSink', 'HeadComplete', 'HeadError', 'HeadErrorCode', 'HeadIncomplete', 'HeadLimits', 'HeadResult',
    'HeaderPair', 'ParseExtensionsResult', 'ParseSubprotocolsResult', 'PerMessageDeflateSetup',
    'PreparedFrame', 'ProtocolErrorCode', 'ProtocolEvent', 'ProtocolHost', 'ProtocolOptions', 'RequestHead',
    'ResponseHead', 'UpgradeExpectation', 'UpgradeRejectionCode', 'UpgradeRequestAccepted',
    'UpgradeRequestOptions', 'UpgradeRequestRejected', 'UpgradeRequestValidation', 'UpgradeResponseAccepted',
    'UpgradeResponseFailureCode', 'UpgradeResponseRejected', 'UpgradeResponseValidation', 'UsageErrorCode',
  ],
  'sockeye/pubsub': [
    'Broker', 'BrokerErrorCode', 'BrokerMessage', 'BrokerState', 'BrokerStats', 'HistoryOptions',
    'HistoryPolicy', 'HistoryResult', 'HubStats', 'MemoryBrokerOptions', 'MemoryPresence', 'MessageEnvelope', 'Presence',
    'PresenceData', 'PresenceEvent', 'PresenceListener', 'PresenceMember', 'PubSubOptions', 'PubSubStats',
    'PublishOptions', 'RecoveryFailure', 'RecoveryResult', 'RedisBrokerOptions', 'RedisPresence',
    'RedisPresenceOptions', 'ResumeOptions', 'SkippedRange', 'StreamPosition', 'SubscribeOptions',
    'TopicDiscontinuity',
  ],
  'sockeye/web/reconnecting-websocket': [
    'BackoffOptions', 'BlobLike', 'HeartbeatOptions', 'MessageData', 'OutgoingData', 'ReconnectState',
    'ReconnectingErrorCode', 'ReconnectingWebSocketEventMap', 'ReconnectingWebSocketOptions', 'SocketEvent',
    'Timers', 'WebSocketConstructor', 'WebSocketLike',
  ],
  'sockeye/web/page-socket': [
    'Envelope', 'StateView',
  ],
};
