import { DelineateError } from "../errors.js";
import { type PacsConnection, type PacsFetch, pacsFetch } from "./http.js";

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
  private readonly base: string;
  private readonly fetch: PacsFetch;

  constructor(conn: PacsConnection) {
    this.base = conn.url.replace(/\/+$/, "");
    this.fetch = pacsFetch(conn);
  }

  async changes(since: number, limit = 100): Promise<ChangesPage> {
    const body = (await this.get(`/changes?since=${since}&limit=${limit}`)) as {
      Changes: { Seq: number; ChangeType: string; ResourceType: string; ID: string }[];
      Last: number;
      Done: boolean;
    };
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
    try {
      const body = (await this.get(`/studies/${orthancStudyId}`)) as { MainDicomTags?: { StudyInstanceUID?: string } };
      return body.MainDicomTags?.StudyInstanceUID;
    } catch (err) {
      if (err instanceof DelineateError && err.context.status === 404) return undefined;
      throw err;
    }
  }

  private async get(path: string): Promise<unknown> {
    let res: Awaited<ReturnType<PacsFetch>>;
    try {
      res = await this.fetch(this.base + path, {});
    } catch (err) {
      throw new DelineateError(
        "DLN_ERR_PACS_UNAVAILABLE",
        `Orthanc unreachable (GET ${path}): ${(err as Error).message}`,
        { path },
        { cause: err },
      );
    }
    if (!res.ok) {
      throw new DelineateError(
        res.status >= 500 ? "DLN_ERR_PACS_UNAVAILABLE" : "DLN_ERR_PACS_REJECTED",
        `Orthanc answered ${res.status} to GET ${path}`,
        {
          path,
          status: res.status,
        },
      );
    }
    return res.json();
  }
}
