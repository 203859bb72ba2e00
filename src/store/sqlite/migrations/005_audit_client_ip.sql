-- The client address (after trusted-proxy resolution) of audited requests.
ALTER TABLE audits ADD COLUMN client_ip TEXT;
