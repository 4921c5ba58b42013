//! A Bareos catalog on PostgreSQL (the reference's authoritative DDL).

use serde_json::json;
use vigie_source::Level;

use crate::support::{BAREOS_SCHEMA, PgDb};
use crate::{poll, source};

#[tokio::test]
async fn finished_jobs_become_backup_alerts() {
    let db = PgDb::create("bareos").await;
    db.exec(BAREOS_SCHEMA).await;
    // Jobs as the director writes them (times of the last hours; the first read covers a day).
    db.exec(
        "INSERT INTO Job (JobId,Job,Name,Type,Level,ClientId,JobStatus,SchedTime,StartTime,EndTime,RealEndTime,JobTDate,JobFiles,JobBytes,ReadBytes,JobErrors,PoolId,FilesetId) VALUES \
         (5120,'backup-srv-file-01.2025-01-13_23.05.00_40','backup-srv-file-01','B','F',7,'T',LOCALTIMESTAMP - interval '5 hours',LOCALTIMESTAMP - interval '5 hours',LOCALTIMESTAMP - interval '4 hours',LOCALTIMESTAMP - interval '4 hours',1736809502,1200,52428800,52428800,0,3,2),\
         (5123,'backup-srv-file-01.2025-01-14_23.05.00_41','backup-srv-file-01','B','I',7,'E',LOCALTIMESTAMP - interval '2 hours',LOCALTIMESTAMP - interval '2 hours',LOCALTIMESTAMP - interval '1 hour',LOCALTIMESTAMP - interval '1 hour',1736895902,0,0,0,1,3,2),\
         (5124,'restore.2025-01-14_23.30.00_42','restore-files','R','F',7,'f',NULL,LOCALTIMESTAMP - interval '50 minutes',LOCALTIMESTAMP - interval '40 minutes',NULL,0,0,0,0,1,0,0),\
         (5125,'backup-srv-db-01.2025-01-14_23.40.00_43','backup-srv-db-01','B','I',7,'R',NULL,LOCALTIMESTAMP - interval '10 minutes',NULL,NULL,0,0,0,0,0,3,2),\
         (4000,'backup-old.2024-01-01_23.05.00_01','backup-old','B','F',7,'E',NULL,LOCALTIMESTAMP - interval '30 days',LOCALTIMESTAMP - interval '30 days',NULL,0,0,0,0,1,3,2)",
    )
    .await;
    let s = source("bareos", "bareos", &db.url, json!({}));
    let batch = poll(s.as_ref(), None).await;
    // The old job is before the first read's window, the restore is not a backup, the running
    // job has not finished.
    assert_eq!(batch.records.len(), 2, "{:#?}", batch.records);
    let ok = &batch.records[0];
    assert!(ok.clear);
    assert_eq!(ok.resource, "backup-srv-file-01");
    assert_eq!(
        ok.attributes["event"],
        json!("bareos-job-backup-srv-file-01")
    );
    let failed = &batch.records[1];
    assert!(!failed.clear);
    assert_eq!(failed.level, Some(Level::Critical));
    assert_eq!(failed.domain.as_deref(), Some("backup"));
    assert_eq!(failed.source_ref.as_deref(), Some("job/5123"));
    assert_eq!(
        failed.message,
        "Backup job backup-srv-file-01 (Incremental) on srv-file-01-fd: terminated with errors, 1 error(s)"
    );
    assert_eq!(failed.attributes["client"], json!("srv-file-01-fd"));

    // The running job ends with warnings.
    db.exec("UPDATE Job SET JobStatus = 'W', EndTime = LOCALTIMESTAMP - interval '1 minute' WHERE JobId = 5125").await;
    let next = poll(s.as_ref(), batch.position.as_deref()).await;
    assert_eq!(next.records.len(), 1);
    assert_eq!(next.records[0].level, Some(Level::Warning));
    assert_eq!(next.records[0].resource, "backup-srv-db-01");
    let idle = poll(s.as_ref(), next.position.as_deref()).await;
    assert!(idle.records.is_empty());
}
