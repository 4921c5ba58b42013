//! Source databases for tests: a database of its own per test on the real MariaDB
//! (`VIGIE_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306`) or PostgreSQL
//! (`VIGIE_TEST_PG_URL`), holding the tools' real tables (reference SOURCES.md), and a TCP proxy
//! that can cut and restore the way to a database.
//!
//! Also used by `modules/sources/tests/it` (included by path).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use sqlx::{Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

pub fn mysql_admin_url() -> String {
    std::env::var("VIGIE_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into())
}

pub fn pg_admin_url() -> String {
    vigie_core::testing::pg_admin_url()
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "vigie_test_{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// `scheme://user[:pw]@host:port` + `/db`.
pub fn with_database(base: &str, db: &str) -> String {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let after = base.find("://").map_or(0, |i| i + 3);
    let root = match base[after..].find('/') {
        Some(i) => &base[..after + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// The host and port of a URL (`127.0.0.1:3306`).
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

/// A MariaDB database of its own, dropped by [`MyDb::drop_db`] (and by the test command).
pub struct MyDb {
    pub name: String,
    pub url: String,
    conn: Mutex<mysql_async::Conn>,
}

impl MyDb {
    pub async fn create(prefix: &str) -> MyDb {
        let name = unique(prefix);
        let admin = mysql_admin_url();
        let mut conn = mysql_async::Conn::from_url(&admin)
            .await
            .expect("MariaDB reachable at VIGIE_TEST_MYSQL_URL (scripts/test starts it)");
        conn.query_drop(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
        .await
        .expect("create database");
        conn.query_drop(format!("USE `{name}`")).await.expect("use");
        conn.query_drop("SET time_zone = '+00:00'")
            .await
            .expect("tz");
        MyDb {
            url: with_database(&admin, &name),
            name,
            conn: Mutex::new(conn),
        }
    }

    /// Runs statements separated by `;` at line ends.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn.lock().await;
        for stmt in split(sql) {
            conn.query_drop(&stmt)
                .await
                .unwrap_or_else(|e| panic!("{e}\nin: {stmt}"));
        }
    }

    /// One statement with parameters.
    pub async fn exec_params(&self, sql: &str, params: Vec<mysql_async::Value>) {
        let mut conn = self.conn.lock().await;
        conn.exec_drop(sql, mysql_async::Params::Positional(params))
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    }

    pub async fn drop_db(self) {
        let mut conn = self.conn.into_inner();
        let _ = conn
            .query_drop(format!("DROP DATABASE `{}`", self.name))
            .await;
        let _ = conn.disconnect().await;
    }
}

/// A PostgreSQL database of its own (dropped by the test command, `vigie_test_*`).
pub struct PgDb {
    pub url: String,
    conn: Mutex<PgConnection>,
}

impl PgDb {
    pub async fn create(prefix: &str) -> PgDb {
        let name = unique(prefix);
        let admin = pg_admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        let conn = PgConnection::connect(&url).await.expect("connect");
        PgDb {
            url,
            conn: Mutex::new(conn),
        }
    }

    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn.lock().await;
        for stmt in split(sql) {
            sqlx::query(sqlx::AssertSqlSafe(stmt.clone()))
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{e}\nin: {stmt}"));
        }
    }
}

fn split(sql: &str) -> Vec<String> {
    sql.split(";\n")
        .map(str::trim)
        .map(|s| s.trim_end_matches(';').trim().to_owned())
        .filter(|s| {
            !s.is_empty()
                && !s
                    .lines()
                    .all(|l| l.trim().is_empty() || l.trim().starts_with("--"))
        })
        .collect()
}

/// GLPI 10.0.22 tables as in `install/mysql/glpi-10.0.22-empty.sql` (the columns the connector
/// and the tests use, with their real names and types).
pub const GLPI_SCHEMA: &str = "
CREATE TABLE `glpi_tickets` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `entities_id` int unsigned NOT NULL DEFAULT '0',
  `name` varchar(255) DEFAULT NULL,
  `date` timestamp NULL DEFAULT NULL,
  `closedate` timestamp NULL DEFAULT NULL,
  `solvedate` timestamp NULL DEFAULT NULL,
  `takeintoaccountdate` timestamp NULL DEFAULT NULL,
  `date_mod` timestamp NULL DEFAULT NULL,
  `users_id_lastupdater` int unsigned NOT NULL DEFAULT '0',
  `status` int NOT NULL DEFAULT '1',
  `users_id_recipient` int unsigned NOT NULL DEFAULT '0',
  `requesttypes_id` int unsigned NOT NULL DEFAULT '0',
  `content` longtext,
  `urgency` int NOT NULL DEFAULT '1',
  `impact` int NOT NULL DEFAULT '1',
  `priority` int NOT NULL DEFAULT '1',
  `itilcategories_id` int unsigned NOT NULL DEFAULT '0',
  `type` int NOT NULL DEFAULT '1',
  `global_validation` int NOT NULL DEFAULT '1',
  `is_deleted` tinyint NOT NULL DEFAULT '0',
  `locations_id` int unsigned NOT NULL DEFAULT '0',
  `date_creation` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `date` (`date`),
  KEY `closedate` (`closedate`),
  KEY `status` (`status`),
  KEY `priority` (`priority`),
  KEY `request_type` (`requesttypes_id`),
  KEY `date_mod` (`date_mod`),
  KEY `entities_id` (`entities_id`),
  KEY `itilcategories_id` (`itilcategories_id`),
  KEY `is_deleted` (`is_deleted`),
  KEY `name` (`name`),
  KEY `date_creation` (`date_creation`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;
CREATE TABLE `glpi_itilcategories` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `entities_id` int unsigned NOT NULL DEFAULT '0',
  `is_recursive` tinyint NOT NULL DEFAULT '0',
  `itilcategories_id` int unsigned NOT NULL DEFAULT '0',
  `name` varchar(255) DEFAULT NULL,
  `completename` text,
  `comment` text,
  `level` int NOT NULL DEFAULT '0',
  `is_incident` int NOT NULL DEFAULT '1',
  `is_request` int NOT NULL DEFAULT '1',
  `date_mod` timestamp NULL DEFAULT NULL,
  `date_creation` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;
CREATE TABLE `glpi_items_tickets` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `itemtype` varchar(255) DEFAULT NULL,
  `items_id` int unsigned NOT NULL DEFAULT '0',
  `tickets_id` int unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  UNIQUE KEY `unicity` (`itemtype`,`items_id`,`tickets_id`),
  KEY `tickets_id` (`tickets_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;
CREATE TABLE `glpi_computers` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `entities_id` int unsigned NOT NULL DEFAULT '0',
  `name` varchar(255) DEFAULT NULL,
  `serial` varchar(255) DEFAULT NULL,
  `otherserial` varchar(255) DEFAULT NULL,
  `contact` varchar(255) DEFAULT NULL,
  `comment` text,
  `date_mod` timestamp NULL DEFAULT NULL,
  `locations_id` int unsigned NOT NULL DEFAULT '0',
  `is_template` tinyint NOT NULL DEFAULT '0',
  `template_name` varchar(255) DEFAULT NULL,
  `is_deleted` tinyint NOT NULL DEFAULT '0',
  `is_dynamic` tinyint NOT NULL DEFAULT '0',
  `states_id` int unsigned NOT NULL DEFAULT '0',
  `uuid` varchar(255) DEFAULT NULL,
  `date_creation` timestamp NULL DEFAULT NULL,
  `is_recursive` tinyint NOT NULL DEFAULT '0',
  `last_inventory_update` timestamp NULL DEFAULT NULL,
  `last_boot` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `date_mod` (`date_mod`),
  KEY `name` (`name`),
  KEY `is_template` (`is_template`),
  KEY `is_deleted` (`is_deleted`),
  KEY `states_id` (`states_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;
INSERT INTO glpi_itilcategories (id,entities_id,itilcategories_id,name,completename,level,is_incident,is_request)
 VALUES (3,0,0,'Network','Network',1,1,1), (12,0,3,'VPN','Network > VPN',2,1,1)
";

/// A ticket row as GLPI writes it.
pub fn ticket_insert(
    id: u32,
    name: &str,
    status: i32,
    urgency: i32,
    impact: i32,
    priority: i32,
    date_mod: &str,
) -> String {
    format!(
        "INSERT INTO glpi_tickets (id,entities_id,name,date,date_mod,status,users_id_recipient,requesttypes_id,content,urgency,impact,priority,itilcategories_id,type,is_deleted,date_creation) \
         VALUES ({id},0,'{name}','{date_mod}','{date_mod}',{status},7,1,'&#60;p&#62;Users cannot connect&#60;/p&#62;',{urgency},{impact},{priority},12,1,0,'{date_mod}')"
    )
}

/// ManageEngine Applications Manager tables. The schema is reconstructed (SOURCES.md §5): names
/// from SQL in public code; the column types are **unverified** (chosen as the most plausible:
/// ids and epoch-millisecond times as BIGINT, texts as VARCHAR/TEXT). `AM_MO_DowntimeData` is not
/// in SOURCES.md: seen in public code (`RESID`, `DOWNTIME`, `UPTIME` = 0 while down, `TYPE`;
/// meaning of the TYPE values **unverified**). The MODTIME index is the one the hub needs.
pub const MANAGEENGINE_SCHEMA: &str = "
CREATE TABLE AM_ManagedObject (
  RESOURCEID BIGINT NOT NULL,
  RESOURCENAME VARCHAR(255),
  TYPE VARCHAR(100),
  DISPLAYNAME VARCHAR(255),
  DESCRIPTION TEXT,
  PRIMARY KEY (RESOURCEID)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE Alert (
  ID BIGINT NOT NULL,
  SOURCE VARCHAR(100),
  CATEGORY VARCHAR(100),
  SEVERITY INT,
  MMESSAGE TEXT,
  CREATETIME BIGINT,
  MODTIME BIGINT,
  PRIMARY KEY (ID),
  KEY Alert_MODTIME (MODTIME)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE AM_MO_DowntimeData (
  RESID BIGINT NOT NULL,
  DOWNTIME BIGINT NOT NULL,
  UPTIME BIGINT NOT NULL DEFAULT 0,
  TYPE INT NOT NULL DEFAULT 1,
  KEY AM_MO_DowntimeData_RESID (RESID, DOWNTIME)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
";

/// Bareos catalog tables (`core/src/cats/ddl/creates/postgresql.sql`, catalog 2230), the columns
/// the connector reads.
pub const BAREOS_SCHEMA: &str = "
CREATE TABLE Client (
  ClientId SERIAL NOT NULL,
  Name TEXT NOT NULL,
  UName TEXT NOT NULL,
  AutoPrune SMALLINT DEFAULT 0,
  FileRetention BIGINT DEFAULT 0,
  JobRetention BIGINT DEFAULT 0,
  PRIMARY KEY (ClientId)
);
CREATE TABLE Job (
  JobId SERIAL NOT NULL,
  Job TEXT NOT NULL,
  Name TEXT NOT NULL,
  Type CHAR(1) NOT NULL,
  Level CHAR(1) NOT NULL,
  ClientId INTEGER DEFAULT 0,
  JobStatus CHAR(1) NOT NULL,
  SchedTime TIMESTAMP WITHOUT TIME ZONE,
  StartTime TIMESTAMP WITHOUT TIME ZONE,
  EndTime TIMESTAMP WITHOUT TIME ZONE,
  RealEndTime TIMESTAMP WITHOUT TIME ZONE,
  JobTDate BIGINT DEFAULT 0,
  VolSessionId INTEGER DEFAULT 0,
  volSessionTime INTEGER DEFAULT 0,
  JobFiles INTEGER DEFAULT 0,
  JobBytes BIGINT DEFAULT 0,
  ReadBytes BIGINT DEFAULT 0,
  JobErrors INTEGER DEFAULT 0,
  JobMissingFiles INTEGER DEFAULT 0,
  PoolId INTEGER DEFAULT 0,
  FilesetId INTEGER DEFAULT 0,
  PriorJobid INTEGER DEFAULT 0,
  PurgedFiles SMALLINT DEFAULT 0,
  HasBase SMALLINT DEFAULT 0,
  HasCache SMALLINT DEFAULT 0,
  Reviewed SMALLINT DEFAULT 0,
  Comment TEXT,
  PRIMARY KEY (JobId)
);
CREATE INDEX job_name_idx ON Job (Name);
INSERT INTO Client (ClientId, Name, UName) VALUES (7, 'srv-file-01-fd', '23.0.1 (12Jan24) Linux')
";

/// A TCP proxy in front of a database, which a test can cut (every connection is closed at
/// once and new ones are refused) and restore.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut cr, &mut sw) => {}
                        _ = tokio::io::copy(&mut sr, &mut cw) => {}
                    }
                });
                conns2.lock().expect("proxy").push(task.abort_handle());
            }
        });
        Proxy {
            port,
            up,
            connections,
        }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.connections.lock().expect("proxy").drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// The URL reaching `url`'s database through the proxy.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("mysql", url));
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        // mysql_async moves loopback connections to the server's Unix socket unless told not to,
        // which would go around the proxy.
        let extra = if scheme.starts_with("mysql") {
            if tail.contains('?') {
                "&prefer_socket=false"
            } else {
                "?prefer_socket=false"
            }
        } else {
            ""
        };
        format!("{scheme}://{user}127.0.0.1:{}{tail}{extra}", self.port)
    }
}
