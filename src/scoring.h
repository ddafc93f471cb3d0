/*-------------------------------------------------------------------------
 *
 * scoring.h
 *		Per-insert scoring of attached tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SCORING_H
#define FRAUDSTREAM_SCORING_H

extern void FsScoringInit(void);

#endif							/* FRAUDSTREAM_SCORING_H */
