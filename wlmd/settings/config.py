"""The one immutable configuration object every part of wlmd reads.

It is produced once at start-up by :mod:`wlmd.cli` from the command line (and
option files); nothing else reads ``sys.argv``. Defaults are wlmscpfs's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReturnCharset(enum.Enum):
    """Which Specific Character Set (0008,0005) responses carry (-cs0/-cs1/-csk)."""

    NONE = "none"  # -cs0, --return-no-char-set (default)
    ISO_IR_100 = "iso-ir-100"  # -cs1, --return-iso-ir-100
    KEEP = "keep"  # -csk, --keep-char-set (as found in the worklist file)


class PreferredSyntax(enum.Enum):
    """Network transfer syntax preference (+x=, +xe, +xb, +xd, +xi)."""

    UNCOMPRESSED = "uncompr"  # +x=  explicit VR local byte order (default)
    LITTLE = "little"  # +xe
    BIG = "big"  # +xb
    DEFLATED = "deflated"  # +xd  (also accepts deflated explicit VR LE)
    IMPLICIT = "implicit"  # +xi  implicit VR little endian only


class ProcessModel(enum.Enum):
    FORK = "fork"  # --fork (default): one worker process per association
    SINGLE = "single"  # -s, --single-process


@dataclass(frozen=True)
class Config:
    """Every setting of wlmd; field names follow the long option names."""

    port: int
    # --- general / logging
    log_level: str = "warn"  # fatal, error, warn, info, debug, trace
    log_config: str | None = None
    # --- multi-process
    process_model: ProcessModel = ProcessModel.FORK
    # --- input
    data_files_path: str = "."
    enable_file_reject: bool = True
    # --- processing
    return_charset: ReturnCharset = ReturnCharset.NONE
    sq_expansion: bool = True  # -nse / --no-sq-expansion turns it off
    # --- network
    listen_address: str = ""  # "" = all interfaces, as wlmscpfs
    preferred_syntax: PreferredSyntax = PreferredSyntax.UNCOMPRESSED
    access_control: bool = False  # +ac / -ac
    enable_new_vr: bool = True  # +u / -u
    compression_level: int = 6  # +cl, only with +xd
    acse_timeout: int = 30  # -ta
    dimse_timeout: int | None = None  # -td, None = unlimited
    max_associations: int = 50
    # wlmd: None = half of max_associations, 0 = no per-host limit (policy.per_host_limit)
    max_associations_per_host: int | None = None
    #: --spare-workers: workers forked ahead of their connection (fork mode), see wlmd.process.spare
    spare_workers: int = 4
    refuse: bool = False
    reject: bool = False  # reject associations without Implementation Class UID
    no_fail: bool = False  # don't fail on an invalid query
    sleep_before: int = 0
    sleep_after: int = 0
    sleep_during: int = 0
    max_pdu: int = 16384  # -pdu, 4096..131072
    host_lookup: bool = True  # -dhl / --disable-host-lookup turns it off
    # --- output
    request_file_path: str | None = None  # -rfp
    request_file_format: str = "#t.dump"  # -rff
    # --- service (wlmd extensions)
    config_file: str | None = None  # --config: wlmd.conf(5) read before the command line
    daemon: bool = False  # --daemon: detach (classic init systems; systemd runs us in front)
    pid_file: str | None = None  # --pid-file
    # --- wlmd extensions (off by default: wlmscpfs behaviour unless asked)
    filter_issuer_aet: bool = False  # Orthanc's FilterIssuerAet
    limit_answers: int = 0  # Orthanc's LimitAnswers, 0 = unlimited
    case_insensitive_names: bool = False  # PN matching ignoring case
    wildcards_all_keys: bool = False  # wildcards also on PatientID/Modality/station AE
    tls_cert: str | None = None  # --tls-cert: DICOM TLS on when set
    tls_key: str | None = None
    tls_ca: str | None = None
    tls_require_peer_cert: bool = False
    allowed_callers: str | None = None  # --allowed-callers: per-area calling AE allow-list
    request_filter: str | None = None  # --request-filter: a site's function run before matching
    lock_timeout: int | None = None  # --lock-timeout: None = block, as wlmscpfs
    index: bool = True  # --no-index: no snapshot kept between queries, no indexes
    snapshot_cache: str | None = None  # --snapshot-cache: file, "none"; default $STATE_DIRECTORY
    # --- UPS (PS3.4 Annex CC), off unless --ups-ae-title names a called AE title
    ups_ae_titles: tuple[str, ...] = ()  # --ups-ae-title: called AE titles that offer UPS
    state_store: str | None = None  # --state-store: SQLite path or postgresql:// URL
    ups_subscribers: str | None = None  # --ups-subscribers: AE title -> host, port, TLS
    ups_keep_final: int = 86400  # --ups-keep-final: seconds COMPLETED/CANCELED steps stay
    ups_event_expiry: int = 86400  # --ups-event-expiry: seconds an undelivered event is retried
    # --- MPPS (PS3.4 Annex F.7), off unless --mpps-ae-title names called AE titles
    mpps_ae_titles: tuple[str, ...] = ()  # --mpps-ae-title: called AE titles that offer MPPS
    mpps_area: str | None = None  # --mpps-area: the storage area whose entries MPPS acts on
    mpps_entry_policy: str = "leave"  # --mpps-entry-policy: wlmd.mpps.policy.Policy
    mpps_remove_delay: int = 3600  # --mpps-remove-delay: seconds after COMPLETED
    mpps_keep: int = 7 * 86400  # --mpps-keep: seconds final MPPS stay in the store; 0 = ever
    # --- housekeeping (a helper child of the supervisor, wlmd.services.housekeeping)
    housekeeping_interval: int = 3600  # --housekeeping-interval: seconds; 0 = off
    purge_after_days: int = 0  # --purge-after-days: SPS start date age; 0 = never
    # --- REST API and web page (wlmd.api), off unless --api-port is given
    api_port: int | None = None  # --api-port: HTTP(S) port of the API helper child
    api_listen_address: str = "127.0.0.1"  # --api-listen-address: localhost unless configured
    api_token_file: str | None = None  # --api-token-file: bearer token required when set
    api_tls_cert: str | None = None  # --api-tls-cert: HTTPS on when set
    api_tls_key: str | None = None  # --api-tls-key: default in the --api-tls-cert file
    api_tls_ca: str | None = None  # --api-tls-ca: client certificates required when set
    # --- HL7 order intake (wlmd extension), off unless --hl7-port is given
    hl7_port: int | None = None  # --hl7-port: MLLP listener port
    hl7_listen_address: str = "127.0.0.1"  # --hl7-listen-address
    hl7_area: str = "WLMD"  # --hl7-area: the storage area orders are written to
    hl7_mapping: str | None = None  # --hl7-mapping: a site's field rules (wlmd.hl7.mapping)
    hl7_station_defaults: tuple[tuple[str, str], ...] = ()  # --hl7-station-default MOD=AE,...
    hl7_tls_cert: str | None = None  # --hl7-tls-cert: MLLP over TLS
    hl7_tls_key: str | None = None  # --hl7-tls-key
    hl7_forward: str | None = None  # --hl7-forward HOST:PORT: MPPS status to the RIS
    hl7_max_size: int = 4 * 1024 * 1024  # --hl7-max-size: bytes per message
