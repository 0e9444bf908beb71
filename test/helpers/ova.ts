/** OVAs made at test time: the maker lives in dev/ova.ts (the demo builds one too). */
export * from '../../dev/ova';
