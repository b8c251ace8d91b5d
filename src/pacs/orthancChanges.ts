import { requireDicomUid } from "../dicom/uids.js";
import { DelineateError } from "../errors.js";
import { type PacsConnection, PacsHttp } from "./http.js";

export interface OrthancChange {
  seq: number;
  changeType: string;
  resourceType: string;
  /** Orthanc's own resource id (not a DICOM UID). */
  id: string;
}

export interface ChangesPage {
  changes: OrthancChange[];
  last: number;
  done: boolean;
}

/** Orthanc's REST API for what DICOMweb does not offer: the change feed, and study id → UID. */
export class OrthancRest {
  private readonly http: PacsHttp;

  /** @throws DelineateError DLN_ERR_CONFIG_INVALID when the connection's CA file cannot be read. */
  constructor(conn: PacsConnection) {
    this.http = new PacsHttp(conn, conn.url, "Orthanc");
  }

  /**
   * One page of Orthanc's change feed after `since`.
   * @throws DelineateError the PacsHttp errors, and DLN_ERR_PACS_MALFORMED when the answer is not a page of changes
   */
  async changes(since: number, limit = 100): Promise<ChangesPage> {
    const path = `/changes?since=${since}&limit=${limit}`;
    const body = (await this.http.json(path)) as
      | {
          Changes?: { Seq: number; ChangeType: string; ResourceType: string; ID: string }[];
          Last: number;
          Done: boolean;
        }
      | undefined;
    if (!Array.isArray(body?.Changes)) {
      throw new DelineateError("DLN_ERR_PACS_MALFORMED", `Orthanc's answer to GET ${path} has no Changes list`, {
        path,
      });
    }
    return {
      changes: body.Changes.map((c) => ({
        seq: c.Seq,
        changeType: c.ChangeType,
        resourceType: c.ResourceType,
        id: c.ID,
      })),
      last: body.Last,
      done: body.Done,
    };
  }

  /** The StudyInstanceUID of an Orthanc study id, or undefined when the study has since been deleted. */
  async studyInstanceUID(orthancStudyId: string): Promise<string | undefined> {
    // Orthanc's ids are SHA-1 hashes in dashed groups; anything else from the feed is not put into a path
    if (!/^[0-9a-f]+(-[0-9a-f]+)*$/.test(orthancStudyId))
      throw new DelineateError(
        "DLN_ERR_PACS_MALFORMED",
        "Orthanc's change feed names a study id that is not an Orthanc id",
      );
    try {
      const body = (await this.http.json(`/studies/${orthancStudyId}`)) as
        | { MainDicomTags?: { StudyInstanceUID?: string } }
        | undefined;
      const uid = body?.MainDicomTags?.StudyInstanceUID;
      return uid === undefined ? undefined : requireDicomUid(uid, "StudyInstanceUID");
    } catch (err) {
      if (err instanceof DelineateError && err.context.status === 404) return undefined;
      throw err;
    }
  }
}
