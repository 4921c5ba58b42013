//! Against a real SQL Server, only when `VIGIE_TEST_MSSQL_URL` names one
//! (`mssql://sa:PASSWORD@127.0.0.1:1433/master?encrypt=trust`, see docs/mssql.md for the official
//! container). The test creates a database of its own with Orion's and WhatsUp's tables, polls
//! both connectors, then drops it. Without the variable it says so and checks nothing.

use serde_json::Value;
use vigie_mssql::client::Client;
use vigie_source::Level;

use crate::{poll, source};

const ORION_DDL: &str = "
CREATE TABLE dbo.SysLog (MsgID bigint NOT NULL PRIMARY KEY, EngineID int NOT NULL DEFAULT 0,
  DateTime datetime NOT NULL DEFAULT getdate(), IP varchar(50) NOT NULL DEFAULT '0.0.0.0',
  Acknowledged tinyint NOT NULL DEFAULT 0, SysLogFacility tinyint NOT NULL DEFAULT 0,
  SysLogSeverity tinyint NOT NULL DEFAULT 0, Hostname_ANSI varchar(255) NOT NULL DEFAULT '',
  Hostname_UNICODE nvarchar(255) NULL, NodeID bigint NOT NULL DEFAULT 0,
  MessageType_ANSI varchar(100) NOT NULL DEFAULT '', MessageType_UNICODE nvarchar(100) NULL,
  Message_ANSI varchar(1024) NOT NULL DEFAULT '', Message_UNICODE nvarchar(1024) NULL,
  SysLogTag_ANSI varchar(100) NOT NULL DEFAULT '', SysLogTag_UNICODE nvarchar(100) NULL,
  FirstIPInMessage varchar(50) NOT NULL DEFAULT '', SecIPInMessage varchar(50) NOT NULL DEFAULT '',
  MacInMessage varchar(12) NOT NULL DEFAULT '', TimeStamp timestamp NOT NULL);
CREATE TABLE dbo.Traps (TrapID bigint NOT NULL PRIMARY KEY, EngineID int NOT NULL DEFAULT 0,
  DateTime datetime NOT NULL DEFAULT getdate(), IPAddress varchar(50) NOT NULL DEFAULT '0.0.0.0',
  Community_ANSI varchar(255) NOT NULL DEFAULT '', Community_Unicode nvarchar(255) NULL,
  Tag_ANSI varchar(100) NOT NULL DEFAULT '', Tag_Unicode nvarchar(100) NULL,
  Acknowledged tinyint NOT NULL DEFAULT 0, Hostname_ANSI varchar(255) NOT NULL DEFAULT '',
  Hostname_Unicode nvarchar(255) NULL, NodeID bigint NOT NULL DEFAULT 0,
  TrapType varchar(100) NOT NULL DEFAULT '', ColorCode int NULL, Message varchar(max) NULL);
CREATE TABLE dbo.TrapVarbinds (TrapID bigint NOT NULL, TrapIndex tinyint NOT NULL,
  OID varchar(255) NULL, OIDName nvarchar(255) NULL, OIDValue nvarchar(max) NULL, RawValue varbinary(max) NULL);
CREATE TABLE dbo.AlertConfigurations (AlertID int NOT NULL PRIMARY KEY, Name nvarchar(1024) NOT NULL,
  Enabled bit NOT NULL DEFAULT 1, Severity int NOT NULL DEFAULT 1);
CREATE TABLE dbo.AlertObjects (AlertObjectID int NOT NULL PRIMARY KEY, AlertID int NOT NULL,
  EntityUri nvarchar(400) NULL, EntityType nvarchar(250) NULL, EntityCaption nvarchar(1024) NULL,
  EntityNetObjectId nvarchar(400) NULL, RelatedNodeCaption nvarchar(1024) NULL, RelatedNodeId int NULL);
CREATE TABLE dbo.AlertActive (AlertActiveID bigint NOT NULL PRIMARY KEY, Acknowledged tinyint NULL,
  AcknowledgedBy nvarchar(100) NULL, AlertObjectID int NOT NULL, TriggeredDateTime datetime NULL,
  TriggeredMessage nvarchar(max) NULL);
CREATE TABLE dbo.Nodes (NodeID int NOT NULL PRIMARY KEY, ObjectSubType nvarchar(50) NULL,
  IP_Address nvarchar(50) NULL, Caption nvarchar(255) NULL, DNS varchar(255) NULL, SysName nvarchar(255) NULL,
  Vendor nvarchar(255) NULL, MachineType nvarchar(255) NULL, Status char(20) NULL,
  StatusDescription nvarchar(2000) NULL, UnManaged bit NULL, CPULoad smallint NULL,
  PercentMemoryUsed int NULL, LastBoot smalldatetime NULL, LastSync datetime NULL);
CREATE TABLE dbo.CPULoad (NodeID int NOT NULL, DateTime datetime NOT NULL, AvgLoad smallint NULL, AvgMemoryUsed real NULL);
INSERT INTO dbo.SysLog (MsgID, DateTime, IP, SysLogFacility, SysLogSeverity, Hostname_ANSI, Hostname_UNICODE, NodeID, MessageType_ANSI, Message_ANSI, Message_UNICODE)
  VALUES (918273, '2025-01-14T09:01:57', '10.1.0.1', 23, 3, 'core-sw1', N'core-sw1', 42, 'LINK-3-UPDOWN', 'link down', N'link down'),
         (918276, '2025-01-14T09:02:11', '10.1.0.4', 23, 2, 'sw-acces', N'sw-accès-étage2', 45, 'ENVMON', 'Fan 2 failed', N'Ventilateur 2 en panne');
INSERT INTO dbo.AlertConfigurations (AlertID, Name, Severity) VALUES (11, N'Node is down', 2);
INSERT INTO dbo.AlertObjects (AlertObjectID, AlertID, EntityType, EntityCaption, RelatedNodeId) VALUES (301, 11, N'Orion.Nodes', N'core-sw1', 42);
INSERT INTO dbo.AlertActive (AlertActiveID, Acknowledged, AlertObjectID, TriggeredDateTime, TriggeredMessage) VALUES (9001, 0, 301, '2025-01-14T09:03:00', N'down');
INSERT INTO dbo.Nodes (NodeID, Caption, IP_Address, Status, UnManaged, CPULoad) VALUES (42, N'core-sw1', N'10.1.0.1', '2', 0, -2), (46, N'lab', N'10.1.0.5', '99', 0, 5);
";

#[tokio::test]
async fn real_sql_server_when_configured() {
    let Ok(url) = std::env::var("VIGIE_TEST_MSSQL_URL") else {
        eprintln!(
            "[vigie-mssql] real_sql_server_when_configured: VIGIE_TEST_MSSQL_URL is not set; NOTHING WAS TESTED against a real SQL Server (see docs/mssql.md)"
        );
        return;
    };
    let admin = Client::new(&url).expect("VIGIE_TEST_MSSQL_URL is a mssql:// URL");
    let db = format!("vigie_test_{}", std::process::id());
    admin
        .query("setup", &format!("CREATE DATABASE [{db}]"), &[])
        .await
        .expect("CREATE DATABASE (the login needs dbcreator)");
    let (head, tail) = url
        .split_once('?')
        .map_or((url.as_str(), ""), |(h, t)| (h, t));
    let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
    let db_url = if tail.is_empty() {
        format!("{base}/{db}")
    } else {
        format!("{base}/{db}?{tail}")
    };
    let client = Client::new(&db_url).unwrap();
    client
        .query("setup", ORION_DDL, &[])
        .await
        .expect("Orion tables");

    let src = source("orion", "solarwinds", &db_url, Value::Null);
    let batch = poll(src.as_ref(), None).await;
    assert!(batch.stopped.is_none(), "{:?}", batch.stopped);
    let refs: Vec<_> = batch
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect();
    assert_eq!(
        refs,
        vec!["syslog/918273", "syslog/918276", "alert-active/9001"]
    );
    assert_eq!(batch.records[1].resource, "sw-accès-étage2");
    assert_eq!(batch.records[1].level, Some(Level::Warning));
    assert_eq!(batch.records[2].level, Some(Level::Critical));
    let statuses: Vec<_> = batch
        .equipment
        .items
        .iter()
        .map(|e| e.status.clone().unwrap())
        .collect();
    assert_eq!(statuses, vec!["down", "unknown"]);
    let position = batch.position.unwrap();
    client
        .query("setup", "DELETE FROM dbo.AlertActive", &[])
        .await
        .unwrap();
    let next = poll(src.as_ref(), Some(&position)).await;
    assert!(next.records.iter().any(|r| r.clear));
    let missing = source(
        "orion",
        "solarwinds",
        &format!("{base}/no_such_db_vigie"),
        Value::Null,
    );
    let e = missing.ping().await.unwrap_err();
    assert!(matches!(e, vigie_poll::SourceError::Login(_)), "{e}");

    drop(client);
    admin
        .query("cleanup", &format!("ALTER DATABASE [{db}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [{db}]"), &[])
        .await
        .expect("DROP DATABASE");
}
