// The part of dcmjs's untyped API that Delineate uses.
declare module "dcmjs" {
  export type NaturalDataset = Record<string, unknown> & { _vrMap?: Record<string, string>; _meta?: unknown };
  export interface DicomDictInstance {
    meta: Record<string, unknown>;
    dict: Record<string, unknown>;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  export interface WriteBufferStreamInstance {
    getBuffer(): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(
          buffer: ArrayBuffer,
          options?: { ignoreErrors?: boolean; untilTag?: string | null },
        ): DicomDictInstance;
        write(
          dict: Record<string, unknown>,
          stream: WriteBufferStreamInstance,
          syntax: string,
          options: { allowInvalidVRLength?: boolean },
        ): number;
      };
      WriteBufferStream: new (defaultSize: number, littleEndian?: boolean) => WriteBufferStreamInstance;
      DicomDict: new (meta: Record<string, unknown>) => DicomDictInstance;
      DicomMetaDictionary: {
        naturalizeDataset(dict: Record<string, unknown>): NaturalDataset;
        denaturalizeDataset(ds: NaturalDataset): Record<string, unknown>;
        /** keyed "(GGGG,EEEE)", hexadecimal in capitals */
        dictionary: Record<string, { vr?: string; name: string } | undefined>;
        /** natural name → dictionary entry; tags punctuated, "(3006,0050)" */
        nameMap: Record<string, { tag: string; vr: string } | undefined>;
        /** "(3006,0050)" → "30060050" */
        unpunctuateTag(tag: string): string;
      };
      ValueRepresentation: {
        addTagAccessors<T extends object>(tag: T): T;
      };
    };
    utilities: {
      addAccessors<T extends object>(dest: T, sqZero?: unknown): T;
      dicomJson: {
        pnConvertToJsonObject(value: string): unknown[];
        pnAddValueAccessors<T extends object>(value: T): T;
      };
    };
    constants: {
      /** DICOM character set (lower case, "-" for " " and "_") to TextDecoder label */
      encodingMapping: Record<string, string>;
    };
    log: {
      setLevel(level: string): void;
      disableAll?: () => void;
      getLogger(name: string): { setLevel(level: string): void };
    };
  };
  export default dcmjs;
}
