/*-------------------------------------------------------------------------
 *
 * modelcatalog.h
 *		Versioned models in fraudstream.models.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_MODELCATALOG_H
#define FRAUDSTREAM_MODELCATALOG_H

extern void FsModelCatalogInit(void);

#endif							/* FRAUDSTREAM_MODELCATALOG_H */
