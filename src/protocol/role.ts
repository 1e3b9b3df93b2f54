/** Which end of the connection we are; it decides masking (RFC 6455 §5.3) and handshake side. */
export enum Role {
  Server = 'server',
  Client = 'client',
}
