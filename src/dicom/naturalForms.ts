/**
 * The forms dcmjs gives naturalised values, rebuilt here so our Part 10 reader can give them without loading dcmjs
 * (its 28,000 lines cost ~50 ms of CPU to load, a seventh of `convert` on a CT series): person names as objects with
 * dcmjs's toJSON/toString, a one-item sequence as an array whose item's attributes read through it, and dcmjs's table
 * of character sets. Each follows dcmjs 0.51's code (MIT licence: utilities/addAccessors.js, utils/dicomJson.js,
 * constants/dicom.js); test/unit/part10Reader.test.ts compares them with dcmjs's own on every file of ../shared/data.
 */

export interface PersonName {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

/** A PN value ("Doe^John=…=…\\…") as dcmjs's pnConvertToJsonObject makes it: empty values dropped. */
export function personNames(value: string): PersonName[] {
  return value
    .split("\\")
    .filter(Boolean)
    .map((v) => {
      const [alphabetic, ideographic, phonetic] = v.split("=");
      return {
        ...(alphabetic ? { Alphabetic: alphabetic } : {}),
        ...(ideographic ? { Ideographic: ideographic } : {}),
        ...(phonetic ? { Phonetic: phonetic } : {}),
      };
    });
}

/** A person name list as Part 10 text, as dcmjs's pnObjectToString writes it. */
function personNameText(names: readonly (PersonName | undefined)[]): string {
  return names
    .filter(Boolean)
    .map((v) =>
      typeof v === "string"
        ? v
        : [v?.Alphabetic ?? "", v?.Ideographic ?? "", v?.Phonetic ?? ""].join("=").replace(/=*$/, ""),
    )
    .join("\\");
}

/** dcmjs's pnAddValueAccessors on a list of person names: JSON as the list, text as Part 10 writes it. */
export function withPersonNameAccessors(names: PersonName[]): PersonName[] {
  if (Object.hasOwn(names, "__hasValueAccessors")) return names;
  Object.defineProperty(names, "__hasValueAccessors", { value: true });
  Object.defineProperty(names, "toJSON", {
    value(this: PersonName[]) {
      return this.filter(Boolean);
    },
  });
  Object.defineProperty(names, "toString", { value: () => personNameText(names) });
  return names;
}

/** dcmjs's addAccessors handler: the array's own properties, else its first item's. */
const firstItem: ProxyHandler<Record<string | symbol, unknown>[]> = {
  get(target, prop) {
    if (prop === "__isProxy") return true;
    if (prop in target) return (target as unknown as Record<string | symbol, unknown>)[prop];
    return target[0]?.[prop];
  },
  set(target, prop, value) {
    if (prop in target) (target as unknown as Record<string | symbol, unknown>)[prop] = value;
    else if (target[0]) target[0][prop] = value;
    return true;
  },
};

/** dcmjs's addAccessors(list, first): a one-item list whose item's attributes also read and write through it. */
export function oneItemList(list: unknown[], first: object): unknown[] {
  list.length = 0;
  list.push(first);
  return new Proxy(list as Record<string | symbol, unknown>[], firstItem);
}

/** dcmjs's encodingMapping: a SpecificCharacterSet value (lower case, "-" for " " and "_") → TextDecoder label. */
export const ENCODINGS: Readonly<Record<string, string>> = {
  "": "iso-8859-1",
  "iso-ir-6": "iso-8859-1",
  "iso-ir-13": "shift-jis",
  "iso-ir-100": "latin1",
  "iso-ir-101": "iso-8859-2",
  "iso-ir-109": "iso-8859-3",
  "iso-ir-110": "iso-8859-4",
  "iso-ir-126": "iso-ir-126",
  "iso-ir-127": "iso-ir-127",
  "iso-ir-138": "iso-ir-138",
  "iso-ir-144": "iso-ir-144",
  "iso-ir-148": "iso-ir-148",
  "iso-ir-166": "tis-620",
  "iso-2022-ir-6": "iso-8859-1",
  "iso-2022-ir-13": "shift-jis",
  "iso-2022-ir-87": "iso-2022-jp",
  "iso-2022-ir-100": "latin1",
  "iso-2022-ir-101": "iso-8859-2",
  "iso-2022-ir-109": "iso-8859-3",
  "iso-2022-ir-110": "iso-8859-4",
  "iso-2022-ir-126": "iso-ir-126",
  "iso-2022-ir-127": "iso-ir-127",
  "iso-2022-ir-138": "iso-ir-138",
  "iso-2022-ir-144": "iso-ir-144",
  "iso-2022-ir-148": "iso-ir-148",
  "iso-2022-ir-149": "euc-kr",
  "iso-2022-ir-159": "iso-2022-jp",
  "iso-2022-ir-166": "tis-620",
  "iso-2022-ir-58": "iso-ir-58",
  "iso-ir-192": "utf-8",
  gb18030: "gb18030",
  "iso-2022-gbk": "gbk",
  "iso-2022-58": "gb2312",
  gbk: "gbk",
};
