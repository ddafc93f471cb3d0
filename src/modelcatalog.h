/*-------------------------------------------------------------------------
 *
 * modelcatalog.h
 *		Versioned models in fraudstream.models, and running as the owner
 *		of fraudstream's own tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_MODELCATALOG_H
#define FRAUDSTREAM_MODELCATALOG_H

typedef struct FsSavedUser
{
	Oid			userid;
	int			sec_context;
} FsSavedUser;

extern void FsModelCatalogInit(void);
extern void FsSwitchToOwner(FsSavedUser *saved);
extern void FsRestoreUser(const FsSavedUser *saved);

#endif							/* FRAUDSTREAM_MODELCATALOG_H */
